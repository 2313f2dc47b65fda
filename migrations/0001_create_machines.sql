-- Each instance is one app of an org; its machines are the VMs that run the app.
CREATE TABLE machines (
  id TEXT PRIMARY KEY NOT NULL,
  name TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('created', 'starting', 'started', 'stopping', 'stopped', 'failed', 'destroyed')),
  region TEXT NOT NULL,
  cpu_kind TEXT NOT NULL CHECK (cpu_kind IN ('shared', 'performance')),
  cpus INTEGER NOT NULL CHECK (cpus > 0),
  memory_mb INTEGER NOT NULL CHECK (memory_mb > 0),
  image TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);

CREATE INDEX machines_state ON machines (state);
CREATE INDEX machines_created_at ON machines (created_at);
