/** Untrusted text for a terminal: control characters (escape sequences, newlines) shown escaped, not obeyed. */
export function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
