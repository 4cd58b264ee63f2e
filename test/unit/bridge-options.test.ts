import t from 'tap';
import { bridgeOptions } from '../../src/domain/firewall/bridge-options.js';

const net = (name: string, interfaceName: string, routed4 = false, routed6 = false) => ({ name, interfaceName, routed4, routed6 });

t.test('every Docker bridge; routed: excepted networks for both families, routed mode for its family', async (t) => {
  const networks = [
    net('bridge', 'docker0'),
    net('web', 'br-0123456789ab'),
    net('lab', 'mybr', true),
    net('v6lab', 'br-fedcba987654', false, true),
    net('vrrp', 'vrrpbr'),
  ];
  t.same(bridgeOptions(networks, ['vrrp', 'not-a-network']), {
    bridges: ['docker0', 'br-0123456789ab', 'mybr', 'br-fedcba987654', 'vrrpbr'],
    routed4: ['mybr', 'vrrpbr'],
    routed6: ['br-fedcba987654', 'vrrpbr'],
  });
  t.same(bridgeOptions([], ['vrrp']), { bridges: [], routed4: [], routed6: [] }, 'no networks, nothing routed');
});
