/**
 * The built-in transports. Nothing is registered on import: callers build a registry with
 * `createTransportRegistry(defaultTransports())` and may add `containers-storage` from storage.
 */
import type { Transport } from '../types.js';
import { dirTransport } from './dir/transport.js';
import { dockerTransport } from './docker/transport.js';
import { dockerArchiveTransport } from './docker-archive/transport.js';
import { ociArchiveTransport } from './oci-archive/transport.js';
import { ociLayoutTransport } from './oci-layout/transport.js';
import { createTransportRegistry } from './registry.js';

export function defaultTransports(): Transport[] {
  return [
    dockerTransport(),
    ociLayoutTransport(),
    ociArchiveTransport(),
    dockerArchiveTransport(),
    dirTransport(),
  ];
}

/** Parses `transport:reference` with the built-in transports (a fresh registry per call; cheap). */
export function parseImageName(imageName: string) {
  return createTransportRegistry(defaultTransports()).parseImageName(imageName);
}
