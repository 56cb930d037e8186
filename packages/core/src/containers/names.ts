import { randomBytes, randomInt } from 'node:crypto';

const ADJECTIVES = [
  'brave',
  'calm',
  'eager',
  'fancy',
  'gentle',
  'happy',
  'jolly',
  'kind',
  'lucid',
  'merry',
  'nifty',
  'proud',
  'quirky',
  'sharp',
  'swift',
  'vivid',
  'witty',
  'zen',
];
const NOUNS = [
  'turing',
  'hopper',
  'lovelace',
  'ritchie',
  'thompson',
  'knuth',
  'dijkstra',
  'liskov',
  'hamilton',
  'torvalds',
  'curie',
  'noether',
  'shannon',
  'babbage',
  'wozniak',
  'goldberg',
];

export function newContainerId(): string {
  return randomBytes(32).toString('hex');
}

/** A random adjective_noun name, as Podman gives unnamed containers. */
export function randomName(): string {
  return `${ADJECTIVES[randomInt(ADJECTIVES.length)]}_${NOUNS[randomInt(NOUNS.length)]}${randomInt(1000)}`;
}

/** Podman's name rule. */
export const NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
