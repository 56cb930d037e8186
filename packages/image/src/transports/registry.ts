/**
 * The transport registry: transports are added explicitly (no import side effects), and image
 * names `<transport>:<reference>` are parsed through it.
 */
import { InvalidReferenceError, UnknownTransportError } from '../errors.js';
import type { ImageReference, Transport, TransportRegistry } from '../types.js';

const TRANSPORT_NAME = /^[a-z][a-z0-9-]*$/;

/** Creates a registry holding `transports` (none by default; see `defaultTransports()`). */
export function createTransportRegistry(transports: readonly Transport[] = []): TransportRegistry {
  const byName = new Map<string, Transport>();
  const registry: TransportRegistry = {
    register(t) {
      if (!TRANSPORT_NAME.test(t.name))
        throw new TypeError(`invalid transport name ${JSON.stringify(t.name)}`);
      if (byName.has(t.name)) throw new TypeError(`transport ${t.name} is already registered`);
      byName.set(t.name, t);
    },
    get: (name) => byName.get(name),
    names: () => [...byName.keys()],
    parseImageName(imageName: string): ImageReference {
      const colon = imageName.indexOf(':');
      if (colon <= 0) throw new InvalidReferenceError(imageName, 'expected <transport>:<reference>');
      const name = imageName.slice(0, colon);
      const t = byName.get(name);
      if (!t) throw new UnknownTransportError(name, [...byName.keys()]);
      return t.parseReference(imageName.slice(colon + 1));
    },
  };
  for (const t of transports) registry.register(t);
  return registry;
}
