// The real services the remote-job tests use (scripts/start-test-services.sh writes env.json), as
// they are now: env.json may outlive the daemons (a reboot), so each service is checked to still
// answer, and one that does not counts as absent (its tests skip with the reason, not fail).
// CommonJS, so that both the TypeScript unit tests and the .mjs UI tests can load it.
'use strict';
const { spawnSync } = require('node:child_process');
const { existsSync, readFileSync } = require('node:fs');
const { homedir } = require('node:os');
const path = require('node:path');

const SERVICES_FILE = path.join(
  process.env.DRAG_TEST_SERVICES ?? path.join(homedir(), '.cache', 'drag-studio', 'test-services'),
  'env.json',
);

/** {sshConfig, sshHost, sshUnknownKeyHost, ssh, slurm} or null when the services were never started. */
function loadTestServices() {
  if (!existsSync(SERVICES_FILE)) return null;
  const services = JSON.parse(readFileSync(SERVICES_FILE, 'utf8'));
  if (
    services.ssh &&
    spawnSync('ssh', [
      '-F',
      services.sshConfig,
      '-o',
      'BatchMode=yes',
      '-o',
      'ConnectTimeout=5',
      '-o',
      'ControlPath=none',
      services.sshHost,
      'true',
    ]).status !== 0
  )
    services.ssh = false;
  if (
    services.slurm &&
    !/^(idle|mix|alloc)/m.test(spawnSync('sinfo', ['-h', '-o', '%t'], { encoding: 'utf8' }).stdout ?? '')
  )
    services.slurm = false;
  return services;
}

module.exports = { SERVICES_FILE, loadTestServices };
