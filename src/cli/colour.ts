/**
 * Colour for tables a person reads (`check`, `status`). One decision for every command: colour only
 * when stdout is a terminal, never into a pipe or a file (scripts parse those, and `--json` never
 * passes through here), and never when NO_COLOR is set to anything non-empty (https://no-color.org)
 * or the terminal says it cannot (TERM=dumb).
 */
export function colourWanted(isTTY: boolean, env: Readonly<Record<string, string | undefined>>): boolean {
  return isTTY && !env.NO_COLOR && env.TERM !== 'dumb';
}

const SGR = { red: '31', yellow: '33', green: '32', bold: '1', dim: '2' } as const;
export type Style = keyof typeof SGR;
/** Wraps text in one style; text must already be `printable` (escapes in it would be obeyed). */
export type Paint = (style: Style, text: string) => string;

export function painter(on: boolean): Paint {
  return on ? (style, text) => `\u001b[${SGR[style]}m${text}\u001b[0m` : (_style, text) => text;
}

/** The painter for process.stdout, as `colourWanted` decides. */
export const stdoutPainter = (): Paint => painter(colourWanted(process.stdout.isTTY === true, process.env));
