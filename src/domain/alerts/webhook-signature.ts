import { createHmac } from 'node:crypto';

/**
 * Standard Webhooks (standardwebhooks.com): the signed content is `id.timestamp.body`, HMAC-SHA256,
 * sent as `v1,<base64>`. A `whsec_` secret is base64 after the prefix; any other secret is used as its bytes.
 */
export function webhookSecretKey(secret: string): Buffer {
  return secret.startsWith('whsec_') ? Buffer.from(secret.slice('whsec_'.length), 'base64') : Buffer.from(secret, 'utf8');
}

export function webhookSignature(key: Buffer, id: string, timestampSeconds: number, body: string): string {
  return `v1,${createHmac('sha256', key).update(`${id}.${timestampSeconds}.${body}`).digest('base64')}`;
}

/** The three headers of one delivery attempt. */
export function webhookHeaders(key: Buffer, id: string, timestampSeconds: number, body: string): Record<string, string> {
  return {
    'webhook-id': id,
    'webhook-timestamp': String(timestampSeconds),
    'webhook-signature': webhookSignature(key, id, timestampSeconds, body),
  };
}
