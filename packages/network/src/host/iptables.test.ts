import { execFileSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { masqChainName, removeContainerRulesBatched } from './iptables.js';

function iptables(...args: string[]): boolean {
  try {
    execFileSync('iptables', ['-w', ...args], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const skip = (() => {
  if (process.getuid?.() !== 0) return 'needs root';
  return iptables('-t', 'filter', '-S', 'INPUT') ? undefined : 'iptables is not usable here';
})();
if (skip) console.warn(`skipping batched rule removal tests: ${skip}`);

// Addresses of a test-owned subnet; the rules below exist only for the test's duration.
const MINE = '10.213.250.7';
const OTHER = '10.213.250.8';
const NET = 'lpts-unit-batch';
const ID = 'c0ffee'.padEnd(64, '0');
const rule = (ip: string) => [
  ['-d', `${ip}/32`, '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', '-j', 'ACCEPT'],
  ['-s', `${ip}/32`, '-j', 'ACCEPT'],
];

describe.skipIf(skip !== undefined)('removeContainerRulesBatched (real iptables)', () => {
  let createdForward = false;
  const chain = masqChainName(NET, ID);

  afterAll(() => {
    for (const ip of [MINE, OTHER]) for (const r of rule(ip)) while (iptables('-D', 'CNI-FORWARD', ...r));
    while (iptables('-t', 'nat', '-D', 'POSTROUTING', '-s', `${MINE}/32`, '-j', chain));
    while (iptables('-t', 'nat', '-D', 'POSTROUTING', ...pluginJump()));
    iptables('-t', 'nat', '-F', chain);
    iptables('-t', 'nat', '-X', chain);
    if (createdForward) iptables('-X', 'CNI-FORWARD');
  });

  const removeMine = () =>
    removeContainerRulesBatched({
      network: NET,
      containerId: ID,
      ips: [`${MINE}/24`],
      masq: true,
      firewall: true,
    });

  // As the bridge plugin writes it (commented), and as a hand-made one (no comment: the
  // one-transaction guess fails, the removal reads the tables and still finds it).
  let jump: string[] = [];
  const pluginJump = () => [
    '-s',
    `${MINE}/32`,
    '-m',
    'comment',
    '--comment',
    `name: "${NET}" id: "${ID}"`,
    '-j',
    chain,
  ];

  it.each([
    ['as the plugins wrote them', true],
    ["when the tables differ from the plugins' (read first)", false],
  ])(
    "removes the container's firewall-plugin rules and masquerade chain, nothing else: %s",
    async (_label, commented) => {
      jump = commented ? pluginJump() : ['-s', `${MINE}/32`, '-j', chain];
      createdForward = iptables('-N', 'CNI-FORWARD') || createdForward;
      for (const ip of [MINE, OTHER])
        for (const r of rule(ip)) expect(iptables('-A', 'CNI-FORWARD', ...r)).toBe(true);
      expect(iptables('-t', 'nat', '-N', chain)).toBe(true);
      expect(iptables('-t', 'nat', '-A', chain, '!', '-d', '224.0.0.0/4', '-j', 'MASQUERADE')).toBe(true);
      expect(iptables('-t', 'nat', '-A', 'POSTROUTING', ...jump)).toBe(true);

      await removeMine();

      for (const r of rule(MINE)) expect(iptables('-C', 'CNI-FORWARD', ...r)).toBe(false);
      for (const r of rule(OTHER)) expect(iptables('-C', 'CNI-FORWARD', ...r)).toBe(true);
      expect(iptables('-t', 'nat', '-S', chain)).toBe(false);
      expect(iptables('-t', 'nat', '-C', 'POSTROUTING', ...jump)).toBe(false);
      // Nothing left to remove: no error, no change.
      await removeMine();
      for (const r of rule(OTHER)) expect(iptables('-C', 'CNI-FORWARD', ...r)).toBe(true);
    },
  );
});
