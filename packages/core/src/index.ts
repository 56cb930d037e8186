export { CoreError } from './errors.js';
