/** Signal names to numbers (Linux, generic/x86/arm numbering), for StopSignal and the stop-signal annotation. */
import { InvalidSpecOptionError } from '../errors.js';

const SIGNALS: Readonly<Record<string, number>> = {
  HUP: 1,
  INT: 2,
  QUIT: 3,
  ILL: 4,
  TRAP: 5,
  ABRT: 6,
  IOT: 6,
  BUS: 7,
  FPE: 8,
  KILL: 9,
  USR1: 10,
  SEGV: 11,
  USR2: 12,
  PIPE: 13,
  ALRM: 14,
  TERM: 15,
  STKFLT: 16,
  CHLD: 17,
  CLD: 17,
  CONT: 18,
  STOP: 19,
  TSTP: 20,
  TTIN: 21,
  TTOU: 22,
  URG: 23,
  XCPU: 24,
  XFSZ: 25,
  VTALRM: 26,
  PROF: 27,
  WINCH: 28,
  IO: 29,
  POLL: 29,
  PWR: 30,
  SYS: 31,
};

const SIGRTMIN = 34;
const SIGRTMAX = 64;

/**
 * Parse `SIGTERM`, `TERM`, `term`, `15`, `SIGRTMIN+3`, `RTMAX-1` to a signal number (1..64).
 * `what` names the option in the error.
 */
export function parseSignal(sig: string | number, what = 'signal'): number {
  if (typeof sig === 'number' || /^\d+$/.test(sig)) {
    const n = Number(sig);
    if (!Number.isInteger(n) || n < 1 || n > SIGRTMAX)
      throw new InvalidSpecOptionError(what, `${sig} is not a signal`);
    return n;
  }
  const name = sig.toUpperCase().replace(/^SIG/, '');
  const known = SIGNALS[name];
  if (known !== undefined) return known;
  const rt = /^RT(MIN|MAX)(?:([+-])(\d+))?$/.exec(name);
  if (rt) {
    const base = rt[1] === 'MIN' ? SIGRTMIN : SIGRTMAX;
    const off = rt[3] ? Number(rt[3]) * (rt[2] === '-' ? -1 : 1) : 0;
    const n = base + off;
    if (n >= SIGRTMIN && n <= SIGRTMAX) return n;
  }
  throw new InvalidSpecOptionError(what, `${JSON.stringify(sig)} is not a signal`);
}
