// Persistence across reloads in IndexedDB: the personal classes with their clips, and the last
// trained or imported adapter. "Forget everything" deletes the database and the model cache.
const DB_NAME = 'petl-ast';
const VERSION = 1;

function open() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB_NAME, VERSION);
    req.onupgradeneeded = () => {
      const db = req.result;
      if (!db.objectStoreNames.contains('classes')) db.createObjectStore('classes', { keyPath: 'name' });
      if (!db.objectStoreNames.contains('adapters')) db.createObjectStore('adapters');
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function tx(store, mode, fn) {
  const db = await open();
  try {
    return await new Promise((resolve, reject) => {
      const t = db.transaction(store, mode);
      const result = fn(t.objectStore(store));
      t.oncomplete = () => resolve(result && 'result' in result ? result.result : undefined);
      t.onerror = () => reject(t.error);
      t.onabort = () => reject(t.error || new Error('storage transaction aborted'));
    });
  } finally {
    db.close();
  }
}

export const loadClasses = () => tx('classes', 'readonly', (s) => s.getAll());
export const saveClass = (cls) => tx('classes', 'readwrite', (s) => s.put(cls));
export const deleteClass = (name) => tx('classes', 'readwrite', (s) => s.delete(name));
export const loadAdapter = () => tx('adapters', 'readonly', (s) => s.get('current'));
export const saveAdapter = (record) => tx('adapters', 'readwrite', (s) => s.put(record, 'current'));

export async function forgetEverything() {
  await new Promise((resolve, reject) => {
    const req = indexedDB.deleteDatabase(DB_NAME);
    req.onsuccess = () => resolve();
    req.onerror = () => reject(req.error);
    req.onblocked = () => resolve();
  });
  if ('caches' in self) await caches.delete('petl-ast-models');
}
