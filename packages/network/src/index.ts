export { NetworkError } from './errors.js';
