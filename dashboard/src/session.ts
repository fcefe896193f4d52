// The key lives in the tab's sessionStorage: it survives a reload but not closing the tab, and
// another tab signs in on its own.
const storageKey = 'taskport.apiKey';

export function readKey(): string | null {
  return sessionStorage.getItem(storageKey);
}

export function saveKey(key: string): void {
  sessionStorage.setItem(storageKey, key);
}

export function forgetKey(): void {
  sessionStorage.removeItem(storageKey);
}
