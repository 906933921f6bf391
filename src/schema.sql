-- Switchboard schema. Each step upgrades PRAGMA user_version by one; never edit a
-- step that has shipped, add one. Kept portable (no SQLite-only types) for a
-- later PostgreSQL backend. Times are integer milliseconds since the epoch.
-- step 1
CREATE TABLE tenants (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL
);
INSERT INTO tenants (id, name, created_at) VALUES (1, 'default', 0);
CREATE TABLE api_keys (
  id INTEGER PRIMARY KEY,
  tenant_id INTEGER NOT NULL REFERENCES tenants(id),
  key_hash TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL
);
CREATE TABLE proxies (
  id INTEGER PRIMARY KEY,
  tenant_id INTEGER NOT NULL DEFAULT 0,
  url TEXT NOT NULL,
  status TEXT NOT NULL,
  source TEXT NOT NULL,
  last_error TEXT NOT NULL DEFAULT '',
  bad_at INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  UNIQUE (tenant_id, url)
);
CREATE TABLE sessions (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  tenant_id INTEGER NOT NULL REFERENCES tenants(id),
  status TEXT NOT NULL,
  phone TEXT NOT NULL DEFAULT '',
  proxy_id INTEGER NOT NULL DEFAULT 0,
  login_method TEXT NOT NULL,
  pairing_phone TEXT NOT NULL DEFAULT '',
  reason TEXT NOT NULL DEFAULT '',
  last_error TEXT NOT NULL DEFAULT '',
  qr TEXT NOT NULL DEFAULT '',
  qr_at INTEGER NOT NULL DEFAULT 0,
  pairing_code TEXT NOT NULL DEFAULT '',
  pairing_at INTEGER NOT NULL DEFAULT 0,
  trust_level TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  connected_at INTEGER NOT NULL DEFAULT 0,
  first_connected_at INTEGER NOT NULL DEFAULT 0,
  last_ping_at INTEGER NOT NULL DEFAULT 0,
  restarts INTEGER NOT NULL DEFAULT 0,
  fail_streak INTEGER NOT NULL DEFAULT 0,
  worker_backend TEXT NOT NULL DEFAULT '',
  worker_pid INTEGER NOT NULL DEFAULT 0,
  worker_ident INTEGER NOT NULL DEFAULT 0,
  worker_address TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sessions_tenant ON sessions (tenant_id);
CREATE TABLE phone_proxy (
  tenant_id INTEGER NOT NULL,
  phone TEXT NOT NULL,
  proxy_id INTEGER NOT NULL,
  bound_at INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, phone)
);
-- step 2
CREATE TABLE messages (
  id INTEGER PRIMARY KEY,
  public_id TEXT NOT NULL UNIQUE,
  tenant_id INTEGER NOT NULL,
  session_id INTEGER NOT NULL,
  recipient TEXT NOT NULL,
  body TEXT NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  error TEXT NOT NULL DEFAULT '',
  wa_message_id TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  not_before INTEGER NOT NULL DEFAULT 0,
  dispatched_at INTEGER NOT NULL DEFAULT 0,
  finished_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX messages_queue ON messages (session_id, status, not_before, id);
CREATE INDEX messages_tenant ON messages (tenant_id, id);
CREATE INDEX messages_open ON messages (status, expires_at);
CREATE TABLE idempotency_keys (
  tenant_id INTEGER NOT NULL,
  idem_key TEXT NOT NULL,
  message_id INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, idem_key)
);
CREATE TABLE send_pacing (
  session_id INTEGER PRIMARY KEY,
  last_send_at INTEGER NOT NULL,
  gap_ms INTEGER NOT NULL,
  day INTEGER NOT NULL,
  sent_today INTEGER NOT NULL,
  failed_today INTEGER NOT NULL
);
CREATE TABLE inbox (
  id INTEGER PRIMARY KEY,
  tenant_id INTEGER NOT NULL,
  session_id INTEGER NOT NULL,
  sender TEXT NOT NULL,
  body TEXT NOT NULL,
  wa_message_id TEXT NOT NULL,
  sent_at INTEGER NOT NULL,
  received_at INTEGER NOT NULL,
  UNIQUE (session_id, wa_message_id)
);
CREATE INDEX inbox_tenant ON inbox (tenant_id, id);
CREATE TABLE affinity (
  tenant_id INTEGER NOT NULL,
  recipient TEXT NOT NULL,
  session_id INTEGER NOT NULL,
  at INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, recipient)
);
CREATE TABLE suppressions (
  tenant_id INTEGER NOT NULL,
  phone TEXT NOT NULL,
  reason TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, phone)
);
-- step 3
CREATE TABLE leads (
  id INTEGER PRIMARY KEY,
  tenant_id INTEGER NOT NULL,
  name TEXT NOT NULL,
  phone TEXT NOT NULL,
  timezone TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  UNIQUE (tenant_id, phone)
);
CREATE TABLE call_runs (
  id INTEGER PRIMARY KEY,
  tenant_id INTEGER NOT NULL,
  status TEXT NOT NULL,
  total INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  finished_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX call_runs_tenant ON call_runs (tenant_id, id);
CREATE TABLE call_jobs (
  id INTEGER PRIMARY KEY,
  tenant_id INTEGER NOT NULL,
  run_id INTEGER NOT NULL,
  lead_id INTEGER NOT NULL,
  phone TEXT NOT NULL,
  timezone TEXT NOT NULL DEFAULT '',
  status TEXT NOT NULL,
  call_sid TEXT NOT NULL DEFAULT '',
  attempts INTEGER NOT NULL DEFAULT 0,
  not_before INTEGER NOT NULL DEFAULT 0,
  error TEXT NOT NULL DEFAULT '',
  duration INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  dialed_at INTEGER NOT NULL DEFAULT 0,
  finished_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX call_jobs_queue ON call_jobs (tenant_id, status, run_id, id);
CREATE INDEX call_jobs_run ON call_jobs (run_id, status);
CREATE INDEX call_jobs_lead ON call_jobs (lead_id, status);
CREATE INDEX call_jobs_sid ON call_jobs (call_sid);
-- step 4
CREATE TABLE events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  tenant_id INTEGER NOT NULL,
  type TEXT NOT NULL,
  session TEXT NOT NULL DEFAULT '',
  data TEXT NOT NULL,
  at INTEGER NOT NULL
);
CREATE INDEX events_tenant ON events (tenant_id, id);
CREATE INDEX events_at ON events (at);
-- step 5
CREATE TABLE webhooks (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  tenant_id INTEGER NOT NULL,
  url TEXT NOT NULL,
  events TEXT NOT NULL,
  secret TEXT NOT NULL,
  status TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE deliveries (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  webhook_id INTEGER NOT NULL,
  event_id INTEGER NOT NULL,
  event_type TEXT NOT NULL,
  payload TEXT NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_at INTEGER NOT NULL,
  last_status INTEGER NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  retry_from INTEGER NOT NULL,
  done_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX deliveries_queue ON deliveries (webhook_id, status, id);
CREATE INDEX deliveries_done ON deliveries (status, done_at);
-- step 6
CREATE TABLE web_sessions (
  token_hash TEXT PRIMARY KEY,
  tenant_id INTEGER NOT NULL,
  admin INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX web_sessions_expiry ON web_sessions (expires_at);
-- step 7
ALTER TABLE sessions ADD COLUMN needs_proxy INTEGER NOT NULL DEFAULT 0;
