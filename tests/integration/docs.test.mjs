// The API reference stays true: docs/openapi.yaml parses, and every route the daemon
// registers is documented with its method (and nothing documented is missing from the code).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { test } from 'node:test';

test('docs/openapi.yaml documents exactly the routes the daemon serves', () => {
  // Debian's python3-yaml reads it (scripts/setup installs it)
  const p = spawnSync('/usr/bin/python3', ['-c', `
import json, sys, yaml
doc = yaml.safe_load(open('docs/openapi.yaml'))
assert doc['openapi'].startswith('3.'), 'not OpenAPI 3'
print(json.dumps({path: sorted(m.upper() for m in ops if m in ('get', 'post', 'delete', 'put', 'patch'))
                  for path, ops in doc['paths'].items()}))
`], { encoding: 'utf8' });
  assert.equal(p.status, 0, p.stderr);
  const documented = JSON.parse(p.stdout);

  const served = {};
  for (const f of fs.readdirSync('src').filter((n) => n.endsWith('.c'))) {
    const src = fs.readFileSync(`src/${f}`, 'utf8');
    for (const m of src.matchAll(/\{"(GET|POST|DELETE|PUT|PATCH)", "(\/[^"]*)", AUTH_/g)) {
      (served[m[2]] ||= []).push(m[1]);
    }
  }
  assert.ok(Object.keys(served).length > 15, 'the route tables were found');
  for (const [path, methods] of Object.entries(served)) {
    assert.ok(documented[path], `${path} is served but not documented`);
    assert.deepEqual(documented[path], [...methods].sort(), `${path}: documented methods differ from the served ones`);
  }
  for (const path of Object.keys(documented)) assert.ok(served[path], `${path} is documented but not served`);
});
