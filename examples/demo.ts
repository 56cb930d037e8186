import { ImageError } from '@libpod-ts/image';

console.log('libpod-ts demo: packages load', typeof ImageError);
