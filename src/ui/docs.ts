// Runs inside the Swagger UI page that @fastify/swagger-ui serves at /docs (its assets come
// from the package, so the page works offline). It adds the registry's header and lets the
// token the dashboard already holds in this tab authorize "Try it out" at once.
import { TOKEN_KEY } from './api.js';
import { el } from './format.js';

interface SwaggerUi {
  preauthorizeApiKey(scheme: string, value: string): void;
}
type Bundle = ((config: object) => SwaggerUi) & Record<string, unknown>;

const page = window as unknown as { SwaggerUIBundle: Bundle };
const original = page.SwaggerUIBundle;

// The initializer the package writes keeps its Swagger UI instance to itself; wrapping the
// constructor (scripts run before window.onload calls it) is the one place to reach it.
// Authorization given before the document has loaded is lost, hence onComplete.
page.SwaggerUIBundle = Object.assign((config: object) => {
  const ui: SwaggerUi = original({
    ...config,
    onComplete() {
      const token = sessionStorage.getItem(TOKEN_KEY);
      if (token) ui.preauthorizeApiKey('bearer', token);
    },
  });
  return ui;
}, original);

// The package's page has no viewport tag: without one a phone lays it out 980 px wide.
const viewport = el('meta');
viewport.name = 'viewport';
viewport.content = 'width=device-width, initial-scale=1';
document.head.append(viewport);

const header = el('header', 'top');
const nav = el('nav');
const dashboard = el('a', '', 'Dashboard');
dashboard.href = '/ui';
const json = el('a', '', 'openapi.json');
json.href = '/registry/openapi.json';
nav.append(json, dashboard);
header.append(el('h1', '', 'vm-registry API'), nav);
document.body.prepend(header);
