/** Shared close/dispose plumbing for sources and destinations. */
export abstract class Closable {
  private closing: Promise<void> | undefined;
  protected abstract doClose(): Promise<void>;
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
