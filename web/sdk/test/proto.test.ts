import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
// @ts-ignore -- plain JS generator
import { generate, outFile, parse, protoDir } from '../../scripts/protogen.mjs';
import * as gen from '../src/proto.gen';

describe('proto types', () => {
  it('proto.gen.ts is what proto/*.proto generates (run `npm run gen` if not)', () => {
    expect(readFileSync(outFile, 'utf8')).toBe(generate());
  });
  it('every Frame body and Event kind in gateway.proto has a field in the TS types', () => {
    const defs = parse(readFileSync(`${protoDir}/gateway.proto`, 'utf8'));
    const frame = defs.find((d: any) => d.name === 'Frame');
    expect([...gen.FrameFields]).toEqual(frame.fields.map((f: any) => f.name));
    expect(gen.FrameFields).toContain('identify');
    expect(gen.EventFields).toContain('message_create');
    expect(gen.MessageFields).toEqual(expect.arrayContaining(['id', 'channel_id', 'server_id', 'author_id', 'content', 'seq', 'nonce']));
  });
});
