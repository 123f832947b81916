import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

const pages = ['README.md', ...readdirSync(join(root, 'docs')).filter((name) => name.endsWith('.md')).map((name) => `docs/${name}`)];

/** A page's lines with fenced code blocks blanked: headings and links in examples are neither. */
function outsideFences(page: string): string[] {
  let fenced = false;
  return readFileSync(join(root, page), 'utf8').split('\n').map((line) => {
    if (/^\s*```/.test(line)) {
      fenced = !fenced;
      return '';
    }
    return fenced ? '' : line;
  });
}

/** The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens. */
function slug(heading: string): string {
  return heading
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-');
}

/** Every anchor of a page, numbered as GitHub numbers repeated headings (`name`, `name-1`, …). */
function anchors(page: string): Set<string> {
  const seen = new Map<string, number>();
  const found = new Set<string>();
  for (const line of outsideFences(page)) {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!heading) continue;
    const base = slug(heading[1]);
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    found.add(count === 0 ? base : `${base}-${count}`);
  }
  return found;
}

interface Link {
  page: string;
  line: number;
  target: string;
}

/** Relative links and images of a page: `[text](target)`, web addresses left out. */
function relativeLinks(page: string): Link[] {
  const links: Link[] = [];
  outsideFences(page).forEach((line, index) => {
    // Inline code is an example too: `[x](y)` there is not a link.
    const text = line.replace(/`[^`]*`/g, '``');
    for (const match of text.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
      const target = match[1];
      if (!/^[a-z][a-z0-9+.-]*:/i.test(target)) links.push({ page, line: index + 1, target });
    }
  });
  return links;
}

function split(link: Link): { file: string; fragment: string | undefined } {
  const [path, fragment] = link.target.split('#', 2);
  const file = path === '' ? link.page : relative(root, resolve(root, dirname(link.page), decodeURIComponent(path)));
  return { file, fragment: fragment === undefined ? undefined : decodeURIComponent(fragment) };
}

const links = pages.flatMap(relativeLinks);

describe('links between the README and docs/', () => {
  it('gives headings the anchors GitHub gives them', () => {
    assert.equal(slug('Register: `POST /registry/vms`'), 'register-post-registryvms');
    assert.equal(slug('OpenAPI: `/registry/openapi.json` and `/docs`'), 'openapi-registryopenapijson-and-docs');
    assert.equal(slug('Latest: the fourth pass (28 Nov 2026, night, commits b1e702f…24651bc)'), 'latest-the-fourth-pass-28-nov-2026-night-commits-b1e702f24651bc');
    assert.equal(slug('Backup and restore (SQLite)'), 'backup-and-restore-sqlite');
  });

  it('finds the links of every page', () => {
    assert.ok(pages.includes('docs/api.md'), `pages read: ${pages.join(', ')}`);
    assert.ok(links.some((link) => link.page === 'README.md' && link.target === 'docs/api.md'));
  });

  it('points every relative link at a file that exists', () => {
    const broken = links.filter((link) => !existsSync(join(root, split(link).file)));
    assert.deepEqual(broken.map((link) => `${link.page}:${link.line} → ${link.target}`), []);
  });

  it('points every #anchor at a heading of its page', () => {
    const broken = links.filter((link) => {
      const { file, fragment } = split(link);
      return fragment !== undefined && file.endsWith('.md') && existsSync(join(root, file)) && !anchors(file).has(fragment);
    });
    assert.deepEqual(broken.map((link) => `${link.page}:${link.line} → ${link.target}`), []);
  });

  it('reaches every page in docs/ from the README', () => {
    const reached = new Set(['README.md']);
    const queue = ['README.md'];
    for (let page = queue.shift(); page !== undefined; page = queue.shift()) {
      for (const link of relativeLinks(page)) {
        const { file } = split(link);
        if (file.endsWith('.md') && pages.includes(file) && !reached.has(file)) {
          reached.add(file);
          queue.push(file);
        }
      }
    }
    assert.deepEqual(pages.filter((page) => !reached.has(page)), []);
  });
});
