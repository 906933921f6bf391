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

test('.env.example and docs/operations.md name every setting the daemon reads', () => {
  const help = spawnSync(process.env.SB_BUILD ? `${process.env.SB_BUILD}/switchboard` : 'build/switchboard', ['--help'], { encoding: 'utf8' });
  assert.equal(help.status, 0, help.stderr);
  const names = [...help.stdout.matchAll(/^  ([A-Z][A-Z0-9_]+) /gm)].map((m) => m[1]);
  assert.ok(names.length > 30, 'the settings were found in --help');
  const example = fs.readFileSync('.env.example', 'utf8');
  const ops = fs.readFileSync('docs/operations.md', 'utf8');
  for (const n of names) {
    assert.match(example, new RegExp(`^#?${n}=`, 'm'), `.env.example lacks ${n}`);
    assert.ok(ops.includes(n) || ops.includes(n.replace(/_(MAX|MIN)(_MS)?$/, '')), `docs/operations.md lacks ${n}`);
  }
  // and the example holds nothing the daemon does not read (Compose's own are marked)
  for (const m of example.matchAll(/^#?([A-Z][A-Z0-9_]+)=/gm)) {
    if (m[1].startsWith('SWITCHBOARD_') || m[1].startsWith('PROXY_URL_')) continue;
    assert.ok(names.includes(m[1]), `.env.example names ${m[1]}, which the daemon does not read`);
  }
});
