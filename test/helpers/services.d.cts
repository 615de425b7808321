/** Types of services.mjs, for the TypeScript tests. */
export interface TestServices {
  dir: string;
  sshConfig: string;
  sshHost: string;
  sshUnknownKeyHost: string;
  ssh: boolean;
  slurm: boolean;
}
export const SERVICES_FILE: string;
export function loadTestServices(): TestServices | null;
