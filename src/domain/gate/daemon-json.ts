/**
 * Adding dockwarden to, or taking it out of, the `authorization-plugins` list of dockerd's
 * daemon.json, keeping every other key as it is. Pure: the file's text in, the new text out.
 */

export const AUTHZ_KEY = 'authorization-plugins';

export type DaemonJsonEdit = { readonly text: string; readonly changed: boolean } | { readonly error: string };

export function addAuthzPlugin(text: string | null, name: string): DaemonJsonEdit {
  return edit(text, (plugins) => (plugins.includes(name) ? plugins : [...plugins, name]));
}

export function removeAuthzPlugin(text: string | null, name: string): DaemonJsonEdit {
  return edit(text, (plugins) => plugins.filter((p) => p !== name));
}

function edit(text: string | null, change: (plugins: readonly string[]) => readonly string[]): DaemonJsonEdit {
  let config: unknown = {};
  if (text !== null && text.trim() !== '') {
    try {
      config = JSON.parse(text);
    } catch (error) {
      return { error: `not valid JSON (${(error as Error).message}); dockerd would not start with it either: fix it first` };
    }
  }
  if (typeof config !== 'object' || config === null || Array.isArray(config)) return { error: 'not a JSON object' };
  const current = (config as Record<string, unknown>)[AUTHZ_KEY] ?? [];
  if (!Array.isArray(current) || current.some((p) => typeof p !== 'string')) return { error: `"${AUTHZ_KEY}" is not a list of plugin names` };
  const next = change(current as string[]);
  if (next.length === current.length && next.every((p, i) => p === current[i])) return { text: text ?? '', changed: false };
  const updated = { ...(config as Record<string, unknown>) };
  if (next.length === 0) delete updated[AUTHZ_KEY];
  else updated[AUTHZ_KEY] = next;
  return { text: `${JSON.stringify(updated, null, 2)}\n`, changed: true };
}
