import type { Viewer } from './viewer.ts';

// The key lives in the tab's sessionStorage: it survives a reload but not closing the tab, and
// another tab signs in on its own. The viewer it last signed in as is kept beside it, so that a
// reload draws the pages at once while the key is checked again.
const keyItem = 'taskport.apiKey';
const viewerItem = 'taskport.viewer';

export interface StoredSession {
  key: string;
  /** Null when only the key is known (stored by something other than sign-in). */
  viewer: Viewer | null;
}

export function readSession(): StoredSession | null {
  const key = sessionStorage.getItem(keyItem);
  if (key === null) return null;
  try {
    const viewer = JSON.parse(sessionStorage.getItem(viewerItem) ?? 'null') as Viewer | null;
    return { key, viewer: viewer?.key?.role ? viewer : null };
  } catch {
    return { key, viewer: null };
  }
}

export function saveSession(key: string, viewer: Viewer): void {
  sessionStorage.setItem(keyItem, key);
  sessionStorage.setItem(viewerItem, JSON.stringify(viewer));
}

export function forgetSession(): void {
  sessionStorage.removeItem(keyItem);
  sessionStorage.removeItem(viewerItem);
}
