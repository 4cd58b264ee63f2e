import t from 'tap';
import { requestLineOf } from '../../src/adapters/gate/authz-server.js';

/** The request a response-phase message answers, read from its head as the whole message says. */

const b64 = (text: string) => Buffer.from(text).toString('base64');
/** As dockerd's Go encoder writes `authorization.Request`: fields in order, empty ones left out, <>& escaped. */
const goMessage = (fields: Record<string, unknown>) => Buffer.from(JSON.stringify(fields).replace(/&/g, '\\u0026').replace(/</g, '\\u003c'));

t.test('read from the head, as the whole message reads', async (t) => {
  const messages = [
    goMessage({ RequestMethod: 'POST', RequestUri: '/v1.41/images/x/tag?repo=web&tag=1', RequestBody: b64('{}'), RequestHeaders: { 'Content-Type': 'application/json' }, ResponseStatusCode: 201, ResponseBody: b64('x'.repeat(2_000_000)) }),
    goMessage({ User: 'admin "ops"', UserAuthNMethod: 'TLS', RequestMethod: 'DELETE', RequestUri: '/images/web:1?force=1&x=<>' }),
    goMessage({ RequestMethod: 'GET', RequestUri: '/containers/json' }),
    // Not a run of string members first: read whole.
    goMessage({ ResponseStatusCode: 200, RequestMethod: 'POST', RequestUri: '/build' }),
    Buffer.from('  {\n "RequestMethod" : "POST" ,\n "RequestUri":"/commit?container=\\u0078" , "ResponseStatusCode":201}'),
    // A repeated key: the last one counts, as JSON.parse says.
    Buffer.from('{"RequestMethod":"GET","RequestMethod":"POST","RequestUri":"/images/load","X":1}'),
  ];
  for (const message of messages) {
    const whole = JSON.parse(message.toString()) as { RequestMethod: string; RequestUri: string };
    t.same(requestLineOf(message), { method: whole.RequestMethod, uri: whole.RequestUri }, message.toString().slice(0, 80));
  }
  for (const bad of ['', 'not json', '{"RequestMethod":"POST"', '{"RequestMethod":1,"RequestUri":"/x"}', '{"RequestMethod":"POST","RequestUri":"\u0001"}']) {
    t.equal(requestLineOf(Buffer.from(bad)), null, JSON.stringify(bad));
  }
});
