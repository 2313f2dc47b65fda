-- What happened to each machine, in order.
CREATE TABLE machine_events (
  id INTEGER PRIMARY KEY,
  machine_id TEXT NOT NULL REFERENCES machines (id) ON DELETE CASCADE,
  type TEXT NOT NULL,
  status TEXT NOT NULL,
  at TEXT NOT NULL
);

CREATE INDEX machine_events_machine_id ON machine_events (machine_id, at);
