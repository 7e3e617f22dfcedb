// Log in and register.
import { useState } from 'preact/hooks';
import { html } from './html.js';
import { login, say } from './store.js';

export function AuthPage({ mode }) {
  const reg = mode === 'register';
  const [username, setU] = useState('');
  const [password, setP] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  async function submit(e) {
    e.preventDefault();
    setError('');
    if (reg && password.length < 8) { setError('The password must be at least 8 characters.'); return; }
    setBusy(true);
    try { await login(username.trim(), password, reg); } catch (err) { setError(say(err)); } finally { setBusy(false); }
  }
  return html`
    <main class="auth">
      <form class="card auth-card" onSubmit=${submit} aria-labelledby="auth-title">
        <div class="logo">G</div>
        <h1 id="auth-title">${reg ? 'Create an account' : 'Welcome back'}</h1>
        <p class="muted">${reg ? 'Join your communities on Guildhall.' : 'Log in to Guildhall.'}</p>
        <label>Username
          <input name="username" autocomplete="username" required minlength="2" maxlength="32"
            value=${username} onInput=${(e) => setU(e.target.value)} autofocus />
        </label>
        <label>Password
          <input name="password" type="password" autocomplete=${reg ? 'new-password' : 'current-password'} required
            value=${password} onInput=${(e) => setP(e.target.value)} />
        </label>
        ${error && html`<p class="form-error" role="alert">${error}</p>`}
        <button class="primary" type="submit" disabled=${busy}>${busy ? 'Please wait…' : reg ? 'Register' : 'Log in'}</button>
        <p class="muted small">
          ${reg ? html`Already have an account? <a href="/login">Log in</a>` : html`Need an account? <a href="/register">Register</a>`}
        </p>
      </form>
    </main>`;
}
