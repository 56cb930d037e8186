export { ImageError } from './errors.js';
