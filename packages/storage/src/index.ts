export { StorageError } from './errors.js';
