import { el } from './format.js';

interface Parameter {
  name: string;
  in: string;
  required?: boolean;
  description?: string;
  schema?: object;
}

interface Operation {
  summary?: string;
  description?: string;
  parameters?: Parameter[];
  requestBody?: { content?: Record<string, { schema?: object }> };
  responses?: Record<string, { description?: string; content?: Record<string, { schema?: object }> }>;
  security?: object[];
}

interface Document {
  info: { title: string; version: string; description?: string };
  paths: Record<string, Record<string, Operation>>;
}

const METHODS = ['get', 'post', 'put', 'patch', 'delete'];

const json = (value: unknown) => el('pre', '', JSON.stringify(value, null, 2));

/** Renders /registry/openapi.json: one collapsible block per operation, schemas shown as they are. */
function render(doc: Document): HTMLElement[] {
  const blocks: HTMLElement[] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const block = el('details', 'op');
      const summary = el('summary');
      summary.append(el('span', `method method-${method}`, method.toUpperCase()), el('span', 'path', path), el('span', '', op.summary ?? ''));
      if (op.security?.length) summary.append(el('span', 'lock', 'bearer token'));
      const body = el('div', 'op-body');
      if (op.description) body.append(el('p', '', op.description));
      if (op.parameters?.length) {
        const table = el('table', 'params');
        const head = el('tr');
        for (const title of ['name', 'in', 'required', 'schema', 'description']) head.append(el('th', '', title));
        table.append(head);
        for (const p of op.parameters) {
          const row = el('tr');
          const schema = el('td');
          schema.append(el('code', '', JSON.stringify(p.schema ?? {})));
          row.append(el('td', 'path', p.name), el('td', '', p.in), el('td', '', p.required ? 'yes' : 'no'), schema, el('td', '', p.description ?? ''));
          table.append(row);
        }
        body.append(el('h4', '', 'Parameters'), table);
      }
      for (const [type, media] of Object.entries(op.requestBody?.content ?? {})) {
        body.append(el('h4', '', `Request body (${type})`), json(media.schema ?? {}));
      }
      for (const [status, response] of Object.entries(op.responses ?? {})) {
        body.append(el('h4', '', `${status} ${response.description ?? ''}`));
        for (const media of Object.values(response.content ?? {})) if (media.schema) body.append(json(media.schema));
      }
      block.append(summary, body);
      blocks.push(block);
    }
  }
  return blocks;
}

async function main(): Promise<void> {
  const target = document.getElementById('operations')!;
  try {
    const response = await fetch('/registry/openapi.json');
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const doc = (await response.json()) as Document;
    document.getElementById('title')!.textContent = `${doc.info.title} API`;
    document.getElementById('version')!.textContent = `v${doc.info.version}`;
    document.getElementById('description')!.textContent = doc.info.description ?? '';
    target.replaceChildren(...render(doc));
  } catch (error) {
    target.replaceChildren(el('p', 'error', `Could not load /registry/openapi.json: ${(error as Error).message}`));
  }
}

void main();
