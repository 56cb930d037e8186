/** `containers-storage:` — images in a libpod-ts store (see reference.ts, source.ts, destination.ts). */
export { CONTAINERS_STORAGE, containersStorageTransport, StorageReference } from './reference.js';
export { StorageDestination } from './destination.js';
export { StorageSource } from './source.js';
