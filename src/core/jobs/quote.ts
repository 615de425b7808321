/**
 * The one place where remote command lines are built: remote commands are quoted for the remote
 * shell by one tested function, never assembled from data by hand. Every word goes through
 * `shQuote`, so spaces, quotes, `$()`, backticks, globs and newlines in names reach the program as
 * the same bytes.
 */

/** Quotes one word for a POSIX shell (sh, bash, dash, zsh): single quotes, `'` as `'\''`. */
export function shQuote(word: string): string {
  if (word.includes('\0')) throw new Error('a shell word cannot contain a NUL byte');
  if (word !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** A command line from an argument vector: each word quoted, joined by spaces. */
export function shJoin(argv: readonly string[]): string {
  if (argv.length === 0) throw new Error('empty command');
  return argv.map(shQuote).join(' ');
}

/** `NAME=value` exports for a script; names are checked, values quoted. */
export function shExports(env: Readonly<Record<string, string>>): string {
  return Object.entries(env)
    .map(([name, value]) => {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`invalid environment variable name "${name}"`);
      return `export ${name}=${shQuote(value)}\n`;
    })
    .join('');
}

/** The absolute-or-home-relative workdir as a shell word: `~/x` keeps `~` meaning the remote home. */
export function shRemotePath(p: string): string {
  if (p === '~') return '"$HOME"';
  if (p.startsWith('~/')) return `"$HOME"/${shQuote(p.slice(2))}`;
  return shQuote(p);
}
