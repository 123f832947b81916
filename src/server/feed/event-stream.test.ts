import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { testApp } from '../../testing/app.js';

describe('event stream keep-alive', () => {
  it('sends a comment line on an idle stream at the keep-alive interval', async () => {
    const { app, close } = await testApp({ keepAliveMs: 50 });
    await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const { port } = app.server.address() as { port: number };
      const controller = new AbortController();
      const response = await fetch(`http://127.0.0.1:${port}/registry/events`, { signal: controller.signal });
      assert.equal(response.headers.get('content-type'), 'text/event-stream; charset=utf-8');
      let text = '';
      const decoder = new TextDecoder();
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        text += decoder.decode(chunk);
        if ((text.match(/: keep-alive\n\n/g) ?? []).length >= 2) break;
      }
      controller.abort();
      assert.match(text, /^retry: 2000\n: watching from revision 0\n\n/);
    } finally {
      await close();
    }
  });
});
