// Guildhall TypeScript SDK: REST client, gateway client, permission bits and
// the wire types generated from proto/.
export * from './rest.js';
export * from './gateway.js';
export * from './permissions.js';
export * from './snowflake.js';
export type * from './types.js';
export * as proto from './proto.gen.js';
