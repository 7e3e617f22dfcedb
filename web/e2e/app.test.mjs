// End-to-end tests of the web client in headless Chromium against a real
// guildhall process (see harness.mjs). Run: npm run test:e2e (in web/).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Guildhall, Proxy, launchBrowser, openAs, shot, waitFor, watch } from './harness.mjs';

let gh, browser;
const pages = [];

before(async () => {
  gh = new Guildhall();
  await gh.start();
  browser = await launchBrowser();
});

after(async () => {
  for (const p of pages) await p.context().close().catch(() => {});
  await browser?.close();
  await gh?.stop();
});

async function open(user, path, opts) {
  const p = await openAs(browser, opts?.base || gh.url, user, path, opts);
  pages.push(p);
  return p;
}

const msgText = (page) => page.locator('.messages .msg:not(.pending) .msg-text');

test('register, log in, create a server and send the first message through the UI', async () => {
  const page = await open(null, '/');
  await page.waitForSelector('form.auth-card');
  assert.equal(new URL(page.url()).pathname, '/login');
  await shot(page, 'login');

  // a wrong password is explained in words
  await page.fill('input[name=username]', 'nobody');
  await page.fill('input[name=password]', 'wrong password');
  await page.click('button[type=submit]');
  await page.waitForSelector('.form-error:has-text("Wrong username or password")');

  await page.click('a[href="/register"]');
  const name = 'ann' + Math.random().toString(36).slice(2, 7);
  await page.fill('input[name=username]', name);
  await page.fill('input[name=password]', 'short');
  await page.click('button[type=submit]');
  await page.waitForSelector('.form-error:has-text("at least 8")');
  await page.fill('input[name=password]', 'correct horse battery');
  await page.click('button[type=submit]');
  await page.waitForSelector('.conn[data-state="ready"]');
  assert.equal(await page.textContent('.me-name'), name);

  await page.click('button[aria-label="Create or join a server"]');
  await page.fill('input[aria-label="Server name"]', 'Ann Town');
  await page.click('.modal button:has-text("Create")');
  await page.waitForSelector('.chan[data-name="general"].active');
  await page.fill('.composer textarea', 'first!');
  await page.keyboard.press('Enter');
  await waitFor(async () => (await msgText(page).allTextContents()).includes('first!'), 'the message to show');
  // it survives a reload: it came from the server
  await page.reload();
  await waitFor(async () => (await msgText(page).allTextContents()).includes('first!'), 'the message after a reload');

  // channels by category: make a category and a channel in it from the settings
  await page.click('a[aria-label="Server settings"]');
  await page.fill('input[aria-label="New channel name"]', 'Voice of Town');
  await page.selectOption('select[aria-label="Channel type"]', 'category');
  await page.click('form button:has-text("Create")');
  await page.waitForSelector('.ok-note:has-text("Created Voice of Town")');
  await page.fill('input[aria-label="New channel name"]', 'town-hall');
  await page.selectOption('select[aria-label="Channel type"]', 'text');
  await page.selectOption('form select[aria-label="Category"]', { label: 'Voice of Town' });
  await page.click('form button:has-text("Create")');
  await page.waitForSelector('.ok-note:has-text("Created #town-hall")');
  // reorder: a new channel outside categories, moved above general
  await page.fill('input[aria-label="New channel name"]', 'lobby');
  await page.selectOption('form select[aria-label="Category"]', '');
  await page.click('form button:has-text("Create")');
  await page.waitForSelector('.ok-note:has-text("Created #lobby")');
  await page.click('button[aria-label="Move lobby up"]');
  await waitFor(async () => (await page.locator('.chan-row input[aria-label^="Name of"]').evaluateAll((els) => els.map((e) => e.value))).join().startsWith('lobby,general'), 'lobby first in the settings list');
  await page.click('a.tab:has-text("Back to chat")');
  await waitFor(async () => (await page.locator('.sidebar-body > .chan-list .chan').evaluateAll((els) => els.map((e) => e.dataset.name))).join() === 'lobby,general', 'lobby above general');
  await page.waitForSelector('.cat:has(h3:has-text("Voice of Town")) .chan[data-name="town-hall"]');
  assert.equal(await page.locator('.sidebar > .sidebar-body > .chan-list .chan[data-name="town-hall"]').count(), 0, 'not outside its category');
});

test('two users in two browsers chat live: send, typing, edit, delete', async () => {
  const alice = await gh.user('alice', true), bob = await gh.user('bob', true);
  const g = await gh.guild(alice, 'Guildhall Friends', ['random'], [bob]);
  await gh.api('POST', `/servers/${g.id}/channels`, alice.token, { name: 'announcements' });
  const path = `/channels/${g.id}/${g.chans.general.id}`;
  const a = await open(alice, path), b = await open(bob, path);

  await a.fill('.composer textarea', 'hello bob');
  await a.keyboard.press('Enter');
  await waitFor(async () => (await msgText(b).allTextContents()).includes('hello bob'), 'bob to see alice');
  await waitFor(async () => (await b.textContent(`.msg[data-author="${alice.id}"] .author`)) === alice.username, 'the author name');

  // typing indicator
  await b.type('.composer textarea', 'hi al');
  await a.waitForSelector(`.typing:has-text("${bob.username} is typing")`);
  await b.type('.composer textarea', 'ice');
  await b.keyboard.press('Enter');
  await waitFor(async () => (await msgText(a).allTextContents()).includes('hi alice'), 'alice to see bob');
  await a.waitForSelector('.typing', { state: 'detached' });
  // the sender sees exactly one copy (pending replaced by the real one)
  assert.equal((await msgText(b).allTextContents()).filter((t) => t === 'hi alice').length, 1);
  assert.equal(await b.locator('.msg.pending').count(), 0);
  await shot(a, 'chat');

  // edit own message
  const mine = a.locator('.msg', { hasText: 'hello bob' });
  await mine.hover();
  await mine.locator('button[aria-label="Edit message"]').click();
  await a.fill('textarea[aria-label="Edit message"]', 'hello bob (edited by alice)');
  await a.keyboard.press('Enter');
  await waitFor(async () => (await msgText(b).allTextContents()).some((t) => t.startsWith('hello bob (edited by alice)') && t.includes('(edited)')), 'bob to see the edit');

  // ArrowUp in the empty composer edits your last message
  await b.click('.composer textarea');
  await b.keyboard.press('ArrowUp');
  await b.fill('textarea[aria-label="Edit message"]', 'hi alice!');
  await b.keyboard.press('Enter');
  await waitFor(async () => (await msgText(a).allTextContents()).some((t) => t.startsWith('hi alice!')), 'alice to see bob\'s edit');

  // bob can neither edit nor delete alice's message
  const theirs = b.locator('.msg', { hasText: 'hello bob' });
  await theirs.hover();
  assert.equal(await theirs.locator('button[aria-label="Edit message"]').count(), 0);

  // delete own message
  a.once('dialog', (d) => d.accept());
  const m2 = a.locator('.msg', { hasText: 'hello bob (edited' });
  await m2.hover();
  await m2.locator('button[aria-label="Delete message"]').click();
  await waitFor(async () => !(await msgText(b).allTextContents()).some((t) => t.startsWith('hello bob')), 'bob to see the delete');
});

test('an unread badge appears for a channel that is not open and clears when it is opened', async (t) => {
  const alice = await gh.user('alice'), bob = await gh.user('bob');
  const g = await gh.guild(alice, 'Unread Test', ['random'], [bob]);
  const b = await open(bob, `/channels/${g.id}/${g.chans.general.id}`);
  await b.evaluate(() => {
    const gw = globalThis.__guildhall.gateway;
    globalThis.__seen = { unread: 0, creates: [] };
    gw.on('unread_update', (u) => { globalThis.__seen.unread++; (globalThis.__seen.updates ||= []).push(u); });
    gw.on('message_create', (m) => { globalThis.__seen.creates.push(m.content); });
    return gw.whenSynced();
  });
  // the client asks for no more than it shows: full messages for the open channel only
  const subs = await b.evaluate(() => Object.fromEntries(globalThis.__guildhall.gateway.subscriptions()));
  assert.deepEqual(subs, { [g.chans.general.id]: 'SUBSCRIPTION_TYPE_MESSAGES', [g.chans.random.id]: 'SUBSCRIPTION_TYPE_UNREAD_COUNT' });

  await gh.api('POST', `/channels/${g.chans.random.id}/messages`, alice.token, { content: 'psst, over here', nonce: 'u1' });
  const m2 = await gh.api('POST', `/channels/${g.chans.random.id}/messages`, alice.token, { content: `<@${bob.id}> you there?`, nonce: 'u2' });
  const random = b.locator(`.chan[data-channel="${g.chans.random.id}"]`);
  await waitFor(async () => (await random.getAttribute('class')).includes('unread'), 'random to be unread');
  await random.locator('.badge').waitFor();
  // one mention (red) where the server counts mentions, else two unread
  let mentions = false;
  await waitFor(async () => {
    const [text, kind] = [await random.locator('.badge').textContent(), await random.locator('.badge').getAttribute('data-badge')];
    mentions = kind === 'mention';
    return mentions ? text === '1' : text === '2';
  }, 'one mention or two unread');
  // the server icon shows it too
  await b.locator(mentions ? `.rail-item[data-server="${g.id}"] .badge` : `.rail-item[data-server="${g.id}"].has-unread .unread-pip`).waitFor();
  // the open channel has no badge
  assert.equal(await b.locator(`.chan[data-channel="${g.chans.general.id}"] .badge`).count(), 0);
  await shot(b, 'unread');

  const seen = await b.evaluate(() => globalThis.__seen);
  assert.ok(seen.unread >= 1, 'unread_update frames counted the channel');
  assert.ok(!seen.creates.includes('psst, over here'), 'no full message for a channel followed as UNREAD_COUNT');

  await random.click();
  await waitFor(async () => (await msgText(b).allTextContents()).includes('psst, over here'), 'the history of random');
  // a "New" line above the first unread message
  await b.waitForSelector('.new-divider + .msg:has-text("psst, over here")');
  await waitFor(async () => {
    const s2 = await b.evaluate(() => Object.fromEntries(globalThis.__guildhall.gateway.subscriptions()));
    return s2[g.chans.random.id] === 'SUBSCRIPTION_TYPE_MESSAGES' && s2[g.chans.general.id] === 'SUBSCRIPTION_TYPE_UNREAD_COUNT';
  }, 'the subscriptions to follow the open channel');
  await waitFor(async () => (await random.locator('.badge').count()) === 0, 'the badge to clear');
  assert.ok(!(await random.getAttribute('class')).includes('unread'));
  await waitFor(async () => (await b.locator(`.rail-item[data-server="${g.id}"]:is(.has-unread) , .rail-item[data-server="${g.id}"] .badge`).count()) === 0, 'the server icon to clear');

  // back in general, one more message in random counts as one: what was read stays read
  const general = b.locator(`.chan[data-channel="${g.chans.general.id}"]`);
  await general.click();
  await waitFor(async () => (await b.evaluate(() => Object.fromEntries(globalThis.__guildhall.gateway.subscriptions())))[g.chans.random.id] === 'SUBSCRIPTION_TYPE_UNREAD_COUNT', 'random back to UNREAD_COUNT');
  await b.evaluate(() => globalThis.__guildhall.gateway.whenSynced());
  await gh.api('POST', `/channels/${g.chans.random.id}/messages`, alice.token, { content: 'one more', nonce: 'u4' });
  await random.locator('.badge').waitFor();
  await waitFor(async () => (await random.locator('.badge').textContent()) === '1', 'a badge of 1').catch(async (e) => {
    throw new Error(`${e.message}; badge ${await random.locator('.badge').textContent()}; updates ${JSON.stringify(await b.evaluate(() => [globalThis.__seen.updates, globalThis.__guildhall.readSeq, Object.fromEntries(Object.entries(globalThis.__guildhall.state.messages).map(([k, v]) => [k, v.list.map((m) => m.seq)]))]))}`);
  });

  // read positions are kept by the server: after a reload random stays read and general shows what came meanwhile
  const probe = await fetch(`${gh.url}/api/v1/users/@me/read-states?server_id=${g.id}`, { headers: { Authorization: `Bearer ${bob.token}` } });
  if (probe.status === 503) {
    t.diagnostic('read states are not enabled in this guildhall build (503): the reload part is skipped');
    return;
  }
  await b.evaluate(() => globalThis.__guildhall.gateway.whenSynced());
  await random.click();
  // what came while random was followed for counts only is fetched when it opens again
  await waitFor(async () => (await msgText(b).allTextContents()).includes('one more'), 'the message that came while away');
  await b.evaluate(() => globalThis.__guildhall.gateway.whenSynced());
  await gh.api('POST', `/channels/${g.chans.general.id}/messages`, alice.token, { content: 'meanwhile in general', nonce: 'u3' });
  await general.locator('.badge').waitFor();
  await waitFor(async () => {
    const rs = await gh.api('GET', `/users/@me/read-states?server_id=${g.id}`, bob.token);
    const x = rs.read_states.find((y) => y.channel_id === g.chans.random.id);
    return x && Number(x.unread_count || 0) === 0;
  }, 'the ack of random to reach the server');
  await b.reload();
  await b.waitForSelector('.conn[data-state="ready"]');
  await general.locator('.badge').waitFor();
  assert.equal(await general.locator('.badge').textContent(), '1');
  assert.equal(await random.locator('.badge').count(), 0);
});

test('an admin hides a channel and it disappears for the member without a reload; role editor', async () => {
  const alice = await gh.user('alice'), bob = await gh.user('bob');
  const g = await gh.guild(alice, 'Admin Test', ['secret'], [bob]);
  const b = await open(bob, `/channels/${g.id}/${g.chans.secret.id}`);
  await b.locator(`.chan[data-channel="${g.chans.secret.id}"]`).waitFor();
  await b.evaluate(() => { globalThis.__reloaded = false; });

  const a = await open(alice, `/channels/${g.id}/${g.chans.general.id}`);
  await a.click('a[aria-label="Server settings"]');
  await a.click('a.tab:has-text("Channel permissions")');
  await a.selectOption('select[aria-label="Channel"]', g.chans.secret.id);
  await a.click('button[data-action="make-private"]');
  await a.waitForSelector('.ok-note:has-text("private")');

  await waitFor(async () => (await b.locator(`.chan[data-channel="${g.chans.secret.id}"]`).count()) === 0, 'secret to disappear for bob', 15000);
  assert.equal(await b.evaluate(() => globalThis.__reloaded), false, 'no reload happened');
  // bob was moved out of the hidden channel and told why
  await b.waitForSelector('.notice:has-text("can no longer see #secret")');
  assert.match(new URL(b.url()).pathname, new RegExp(`/channels/${g.id}/${g.chans.general.id}$`));

  // Roles: create one, toggle permissions, save, reorder
  await a.click('a.tab:has-text("Roles")');
  await a.click('button:has-text("Create role")');
  await a.waitForSelector('.role-editor h2:has-text("new role")');
  await a.fill('.role-editor input[maxlength="100"]', 'Moderator');
  await a.click('.role-editor [data-perm="KICK_MEMBERS"]');
  await a.click('.role-editor [data-perm="BAN_MEMBERS"]');
  await a.click('.role-editor [data-perm="VIEW_AUDIT_LOG"]');
  await a.click('.role-editor button:has-text("Save changes")');
  await a.waitForSelector('.role-item:has-text("Moderator")');
  const roles = await gh.api('GET', `/servers/${g.id}/roles`, alice.token);
  const mod = roles.find((r) => r.name === 'Moderator');
  assert.equal(BigInt(mod.permissions) & 134n, 134n, 'KICK + BAN + VIEW_AUDIT_LOG saved');
  await a.click('button:has-text("Create role")');
  await a.waitForSelector('.role-item:has-text("new role")');
  await a.click(`.role-item[data-role="${mod.id}"] .role-pick`);
  await a.waitForSelector('.role-editor h2:has-text("Moderator")');
  await shot(a, 'role-editor');
  // move Moderator to the top with the arrow
  await a.click('button[aria-label="Move Moderator up"]');
  await a.waitForSelector('.ok-note:has-text("Order saved")');
  const after = await gh.api('GET', `/servers/${g.id}/roles`, alice.token);
  const top = after.reduce((x, y) => (y.position > x.position ? y : x));
  assert.equal(top.name, 'Moderator');
  // and back by drag and drop: "new role" dropped on Moderator takes the top
  const other = after.find((r) => r.name === 'new role');
  await a.dragAndDrop(`.role-item[data-role="${other.id}"]`, `.role-item[data-role="${mod.id}"]`);
  await waitFor(async () => {
    const rs = await gh.api('GET', `/servers/${g.id}/roles`, alice.token);
    return rs.reduce((x, y) => (y.position > x.position ? y : x)).id === other.id;
  }, 'the dragged role on top');
  await waitFor(async () => (await a.locator('.role-item').first().getAttribute('data-role')) === other.id, 'the list to show it on top');

  // Overwrites: deny SEND_MESSAGES to @everyone in general; bob's send is refused, in words
  await a.click('a.tab:has-text("Channel permissions")');
  await a.selectOption('select[aria-label="Channel"]', g.chans.general.id);
  await a.waitForSelector('.vis h2:has-text("Who can see #general")');
  await a.waitForSelector('.ow-empty');
  await a.selectOption('select[aria-label="Add an overwrite for a role"]', g.id);
  await a.click('button:has-text("Add role")');
  await a.click('button[aria-label="Send messages for @everyone: inherit"]', { timeout: 5000 });
  await a.click('button[aria-label="Send messages for @everyone: allow"]');
  await a.locator('button[aria-label="Send messages for @everyone: deny"]').waitFor();
  await b.fill('.composer textarea', 'can I still talk?');
  await b.keyboard.press('Enter');
  await b.waitForSelector('.msg.pending.failed:has-text("Missing permission SEND_MESSAGES")');
  await b.click('.msg.pending.failed button:has-text("Discard")');

  // Allow list: Moderator may see #secret; giving bob the role brings it back for him
  await a.selectOption('select[aria-label="Channel"]', g.chans.secret.id);
  await a.waitForSelector('.vis h2:has-text("Who can see #secret")');
  await a.selectOption('select[aria-label="Add a role to the allow list"]', mod.id);
  await a.waitForSelector('.vis-list[data-list="allow"] li:has-text("Moderator")');
  await shot(a, 'channel-permissions');
  const vis = await gh.api('GET', `/channels/${g.chans.secret.id}/visibility`, alice.token);
  assert.deepEqual(vis.allow, [{ type: 'role', id: mod.id }]);
  await a.click('a.tab:has-text("Members")');
  await a.click(`li[data-user="${bob.id}"] button:has-text("Manage")`);
  await a.click(`li[data-user="${bob.id}"] label:has-text("Moderator") input`);
  await a.waitForSelector('.ok-note:has-text("Roles updated")');
  await b.locator(`.chan[data-channel="${g.chans.secret.id}"]`).waitFor({ timeout: 15000 });

  // Ban bob with a reason; he is listed under Bans and can be unbanned; kick carol
  const carol = await gh.user('carol');
  const inv = await gh.api('POST', `/servers/${g.id}/invites`, alice.token, {});
  await gh.api('POST', `/invites/${inv.code}`, carol.token);
  await a.fill(`li[data-user="${bob.id}"] input[aria-label="Reason"]`, 'testing bans');
  a.once('dialog', (d) => d.accept());
  await a.click(`li[data-user="${bob.id}"] button[data-action="ban"]`);
  await waitFor(async () => (await a.locator(`li[data-user="${bob.id}"]`).count()) === 0, 'bob to leave the list');
  await a.fill('input[aria-label="Search members"]', carol.username);
  await a.click(`li[data-user="${carol.id}"] button:has-text("Manage")`);
  a.once('dialog', (d) => d.accept());
  await a.click(`li[data-user="${carol.id}"] button[data-action="kick"]`);
  await waitFor(async () => (await a.locator(`li[data-user="${carol.id}"]`).count()) === 0, 'carol to leave the list');
  // bob's client notices he is out
  await b.waitForSelector('.notice:has-text("no longer a member")', { timeout: 15000 });
  await a.click('a.tab:has-text("Bans")');
  await a.waitForSelector(`li:has-text("${bob.username}"):has-text("testing bans")`);
  await a.click(`li:has-text("${bob.username}") button:has-text("Unban")`);
  await a.waitForSelector('.ok-note:has-text("was unbanned")');
  assert.deepEqual(await gh.api('GET', `/servers/${g.id}/bans`, alice.token), []);

  await a.click('a.tab:has-text("Audit log")');
  for (const action of ['member_kick', 'member_ban_add', 'member_ban_remove', 'member_role_add', 'overwrite_update', 'role_create']) {
    await a.waitForSelector(`.audit li[data-action="${action}"]`);
  }
  await a.waitForSelector('.audit li[data-action="member_ban_add"]:has-text("Reason: testing bans")');
});

test('rename a server in the settings: only with MANAGE_SERVER, errors in words, the new name everywhere and in the audit log', async () => {
  const alice = await gh.user('alice'), bob = await gh.user('bob'), carol = await gh.user('carol');
  const g = await gh.guild(alice, 'Old Name', [], [bob, carol]);
  const role = await gh.api('POST', `/servers/${g.id}/roles`, alice.token, { name: 'Managers', permissions: '32' });
  await gh.api('PUT', `/servers/${g.id}/members/${bob.id}/roles/${role.id}`, alice.token);

  // a member without MANAGE_SERVER gets no rename form
  const c = await open(carol, `/servers/${g.id}/settings/overview`);
  await c.waitForSelector('h1:has-text("Overview")');
  await c.waitForSelector('h2:has-text("Your nickname")');
  assert.equal(await c.locator('form[data-form="rename-server"]').count(), 0, 'no rename form for a plain member');

  // the owner: a bad name is refused in words and changes nothing
  const a = await open(alice, `/servers/${g.id}/settings/overview`);
  const form = 'form[data-form="rename-server"]';
  await a.fill(`${form} input[aria-label="Server name"]`, '   ');
  await a.click(`${form} button:has-text("Rename")`);
  await a.waitForSelector('.form-error:has-text("Server name must be 1 to 100 characters")');
  assert.equal((await gh.api('GET', `/servers/${g.id}`, alice.token)).name, 'Old Name');
  await a.fill(`${form} input[aria-label="Server name"]`, 'x'.repeat(101));
  await a.click(`${form} button:has-text("Rename")`);
  await a.waitForSelector('.form-error:has-text("Server name must be 1 to 100 characters")');

  // a good name is saved, trimmed, and shown in the settings and the server rail
  await a.fill(`${form} input[aria-label="Server name"]`, '  New Name  ');
  await a.click(`${form} button:has-text("Rename")`);
  await a.waitForSelector('.ok-note:has-text("Server renamed")');
  assert.equal((await gh.api('GET', `/servers/${g.id}`, alice.token)).name, 'New Name');
  assert.equal(await a.inputValue(`${form} input[aria-label="Server name"]`), 'New Name');
  await a.waitForSelector('.settings-nav h2:has-text("New Name")');
  await a.click('a.tab:has-text("Back to chat")');
  await a.waitForSelector(`.rail-item[data-server="${g.id}"][title="New Name"]`);

  // a member given MANAGE_SERVER by a role gets the form too
  const b = await open(bob, `/servers/${g.id}/settings/overview`);
  await b.fill(`${form} input[aria-label="Server name"]`, 'Bob Named It');
  await b.click(`${form} button:has-text("Rename")`);
  await b.waitForSelector('.ok-note:has-text("Server renamed")');
  assert.equal((await gh.api('GET', `/servers/${g.id}`, carol.token)).name, 'Bob Named It');

  const log = await gh.api('GET', `/servers/${g.id}/audit-log?action=server_update`, alice.token);
  assert.deepEqual(log.map((e) => [e.actor_id, e.target_id, e.changes]), [
    [bob.id, g.id, [{ key: 'name', old: 'New Name', new: 'Bob Named It' }]],
    [alice.id, g.id, [{ key: 'name', old: 'Old Name', new: 'New Name' }]],
  ]);
  // the owner reads it in the audit log tab, filtered by the action
  await a.click('a[aria-label="Server settings"]');
  await a.click('a.tab:has-text("Audit log")');
  await a.selectOption('select[aria-label="Filter by action"]', 'server_update');
  await a.waitForSelector('.audit li[data-action="server_update"]:has-text("Old Name → New Name")');
  await waitFor(async () => (await a.locator('.audit > li').count()) === 2, 'only the two renames listed');
});

test('a dropped connection resumes without losing a message', async () => {
  const alice = await gh.user('alice'), bob = await gh.user('bob');
  const g = await gh.guild(alice, 'Resume Test', [], [bob]);
  const proxy = new Proxy(gh.port);
  await proxy.start();
  try {
    const path = `/channels/${g.id}/${g.chans.general.id}`;
    const b = await open(bob, path, { base: proxy.url });
    await b.evaluate(() => {
      const gw = globalThis.__guildhall.gateway;
      globalThis.__resumes = [];
      gw.on('resumed', (r) => globalThis.__resumes.push(r.replayed));
      return gw.whenSynced();
    });
    await gh.api('POST', `/channels/${g.chans.general.id}/messages`, alice.token, { content: 'before the drop', nonce: 'r0' });
    await waitFor(async () => (await msgText(b).allTextContents()).includes('before the drop'), 'the first message');

    const watcher = await watch(gh.url, alice, g.chans.general.id); // tells when the server has fanned it out
    proxy.cut(); // network loss: no close frame
    await b.waitForSelector('.conn[data-state="reconnecting"], .conn[data-state="connecting"]');
    await gh.api('POST', `/channels/${g.chans.general.id}/messages`, alice.token, { content: 'sent while you were away', nonce: 'r1' });
    await watcher.seen('sent while you were away'); // so bob's session has it queued while he is away
    watcher.close();
    proxy.restore();

    await b.waitForSelector('.conn[data-state="ready"]', { timeout: 20000 });
    await waitFor(async () => (await msgText(b).allTextContents()).includes('sent while you were away'), 'the missed message');
    const resumes = await b.evaluate(() => globalThis.__resumes);
    assert.ok(resumes.length >= 1 && resumes[0] >= 1, `resumed with a replay (got ${JSON.stringify(resumes)})`);

    // and live delivery continues
    await gh.api('POST', `/channels/${g.chans.general.id}/messages`, alice.token, { content: 'after the resume', nonce: 'r2' });
    await waitFor(async () => (await msgText(b).allTextContents()).includes('after the resume'), 'live after resume');
    const texts = await msgText(b).allTextContents();
    assert.deepEqual(texts, ['before the drop', 'sent while you were away', 'after the resume']);
  } finally {
    await proxy.stop();
  }
});

test('invites: create one in the UI and join with its link; member list search', async () => {
  const alice = await gh.user('alice'), carol = await gh.user('carol');
  const g = await gh.guild(alice, 'Invite Test');
  const a = await open(alice, `/channels/${g.id}/${g.chans.general.id}`);
  await a.click('button.invite-btn');
  await a.click('.modal button:has-text("Create invite")');
  const code = await (await a.waitForSelector('[data-invite-code]')).getAttribute('data-invite-code');

  const c = await open(carol, `/invite/${code}`);
  await c.waitForSelector(`.rail-item[data-server="${g.id}"].active`);
  await c.waitForSelector('.chan[data-name="general"].active');
  await c.fill('input[aria-label="Search members"]', carol.username.slice(0, 5));
  await waitFor(async () => {
    const names = await c.locator('.member-name').allTextContents();
    return names.length === 1 && names[0] === carol.username;
  }, 'search to find carol only');

  // a bad invite is explained
  await c.click('button[aria-label="Create or join a server"]');
  await c.fill('input[aria-label="Invite code or link"]', 'nope-nope');
  await c.click('.modal button:has-text("Join")');
  await c.waitForSelector('.modal .form-error:has-text("Unknown invite")');
});

test('narrow window: channels in a drawer, dark theme readable', async () => {
  const alice = await gh.user('alice');
  const g = await gh.guild(alice, 'Narrow Test', ['random']);
  const a = await open(alice, `/channels/${g.id}/${g.chans.general.id}`, { viewport: { width: 390, height: 800 }, colorScheme: 'dark' });
  assert.equal(await a.evaluate(() => document.documentElement.dataset.theme), 'dark');
  assert.equal(await a.locator('.sidebar').isVisible(), true); // in the DOM but off-screen
  const box = await a.locator('.sidebar').boundingBox();
  assert.ok(box.x + box.width <= 0, 'the channel list is off-screen');
  await a.click('button[aria-label="Show channels"]');
  await waitFor(async () => (await a.locator('.sidebar').boundingBox()).x >= 0, 'the drawer to open');
  await a.click(`.chan[data-channel="${g.chans.random.id}"]`);
  await waitFor(async () => (await a.locator('.sidebar').boundingBox()).x < 0, 'the drawer to close');
  await a.fill('.composer textarea', 'small screen');
  await a.keyboard.press('Enter');
  await waitFor(async () => (await msgText(a).allTextContents()).includes('small screen'), 'the message');
  await shot(a, 'narrow-dark');
});

test('history loads as you scroll up, page by page, in order', async () => {
  const alice = await gh.user('alice');
  const g = await gh.guild(alice, 'History Test');
  const ch = g.chans.general.id;
  for (let i = 1; i <= 120; i++) await gh.api('POST', `/channels/${ch}/messages`, alice.token, { content: `message ${i}` });
  const a = await open(alice, `/channels/${g.id}/${ch}`);
  await waitFor(async () => (await msgText(a).count()) === 50, 'the first page');
  assert.equal(await msgText(a).last().textContent(), 'message 120');
  for (const want of [100, 120]) {
    await a.locator('.messages').evaluate((el) => { el.scrollTop = 0; el.dispatchEvent(new Event('scroll')); });
    await waitFor(async () => (await msgText(a).count()) === want, `${want} messages after scrolling up`);
  }
  await a.waitForSelector('.history-start:has-text("This is the start of the channel")');
  const texts = await msgText(a).allTextContents();
  assert.deepEqual(texts, Array.from({ length: 120 }, (_, i) => `message ${i + 1}`));
  // scrolled up, a new message does not yank the view: a button offers to jump
  await a.evaluate(() => globalThis.__guildhall.gateway.whenSynced());
  await gh.api('POST', `/channels/${ch}/messages`, alice.token, { content: 'message 121' });
  await a.click('button.jump');
  await waitFor(async () => a.locator('.messages').evaluate((el) => el.scrollHeight - el.scrollTop - el.clientHeight < 40), 'the view at the bottom');
  assert.equal(await msgText(a).last().textContent(), 'message 121');
  await a.waitForSelector('button.jump', { state: 'detached' });
});

test('a send that fails is retried with the same nonce and never posted twice', async () => {
  const alice = await gh.user('alice');
  const g = await gh.guild(alice, 'Retry Test');
  const ch = g.chans.general.id;
  const a = await open(alice, `/channels/${g.id}/${ch}`);
  const posts = [];
  let failures = 2;
  await a.route('**/api/v1/channels/*/messages', async (route) => {
    if (route.request().method() !== 'POST') return route.continue();
    posts.push(JSON.parse(route.request().postData()).nonce);
    if (failures-- > 0) return route.abort('failed'); // network error: retried on its own
    return route.continue();
  });
  await a.fill('.composer textarea', 'flaky network');
  await a.keyboard.press('Enter');
  await a.waitForSelector('.msg.pending:has-text("flaky network")'); // shown at once
  await waitFor(async () => (await msgText(a).allTextContents()).includes('flaky network'), 'the message to be sent');
  assert.equal(posts.length, 3);
  assert.equal(new Set(posts).size, 1, 'one nonce for every attempt');

  // every attempt fails: the message stays, with the reason and a Retry button
  failures = 100;
  posts.length = 0;
  await a.fill('.composer textarea', 'offline for a while');
  await a.keyboard.press('Enter');
  await a.waitForSelector('.msg.pending.failed:has-text("Cannot reach the server")', { timeout: 20000 });
  failures = 0;
  await a.click('.msg.pending.failed button:has-text("Retry")');
  await waitFor(async () => (await msgText(a).allTextContents()).includes('offline for a while'), 'the retried message');
  assert.equal(new Set(posts).size, 1, 'Retry reuses the nonce');
  assert.equal(await a.locator('.msg.pending').count(), 0);
  const history = await gh.api('GET', `/channels/${ch}/messages`, alice.token);
  assert.deepEqual(history.map((m) => m.content), ['offline for a while', 'flaky network'], 'each message exactly once');

  // an error the server explains is shown in its words, and not retried
  await a.unroute('**/api/v1/channels/*/messages');
  await a.fill('.composer textarea', 'x'.repeat(4001));
  await a.keyboard.press('Enter');
  await a.waitForSelector('.composer .form-error:has-text("at most 4000 characters")');
});

test('mention completion from the server-side member search; mentions render as names and highlight', async () => {
  const alice = await gh.user('alice'), bob = await gh.user('bob');
  const g = await gh.guild(alice, 'Mention Test', [], [bob]);
  const path = `/channels/${g.id}/${g.chans.general.id}`;
  const a = await open(alice, path), b = await open(bob, path);
  await a.type('.composer textarea', `hey @${bob.username.slice(0, 4)}`);
  await a.waitForSelector(`.mention-picks li:has-text("${bob.username}")`);
  await a.keyboard.press('Enter'); // picks the member
  await a.type('.composer textarea', 'look');
  await a.keyboard.press('Enter'); // sends
  const msg = b.locator('.msg', { hasText: 'look' });
  await msg.waitFor();
  assert.equal(await msg.locator('.mention-tag').textContent(), `@${bob.username}`);
  assert.ok((await msg.getAttribute('class')).includes('mentioned'), 'highlighted for bob');
  await b.setViewportSize({ width: 1280, height: 800 });
  await b.evaluate(() => { document.documentElement.dataset.theme = 'dark'; });
  await shot(b, 'mention-dark');
  const [stored] = await gh.api('GET', `/channels/${g.chans.general.id}/messages?limit=1`, alice.token);
  assert.equal(stored.content, `hey <@${bob.id}> look`);
});

test('the member list loads in pages of 50 as it scrolls', async () => {
  const owner = await gh.user('owner');
  const g = await gh.guild(owner, 'Crowd');
  const inv = await gh.api('POST', `/servers/${g.id}/invites`, owner.token, {});
  for (let i = 0; i < 55; i += 5) {
    await Promise.all(Array.from({ length: 5 }, async () => {
      const u = await gh.user('m');
      await gh.api('POST', `/invites/${inv.code}`, u.token);
    }));
  }
  const a = await open(owner, `/channels/${g.id}/${g.chans.general.id}`);
  await waitFor(async () => (await a.locator('.members .member').count()) === 50, 'the first page of members');
  await a.locator('.member-list').evaluate((el) => { el.scrollTop = el.scrollHeight; el.dispatchEvent(new Event('scroll')); });
  await waitFor(async () => (await a.locator('.members .member').count()) === 56, 'the second page');
  const ids = await a.locator('.members .member').evaluateAll((els) => els.map((e) => e.dataset.user));
  assert.equal(new Set(ids).size, 56, 'no member twice');
});
