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
