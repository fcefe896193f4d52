import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

const here = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root: here,
  base: '/dashboard/',
  plugins: [react()],
  resolve: {
    alias: {
      react: 'preact/compat',
      'react-dom/client': 'preact/compat/client',
      'react-dom': 'preact/compat',
      'react/jsx-runtime': 'preact/jsx-runtime',
    },
  },
  build: {
    outDir: fileURLToPath(new URL('../dist-dashboard', import.meta.url)),
    emptyOutDir: true,
    // The server's CSP forbids inline scripts and data: URLs are not worth an exception: every
    // asset is a same-origin file with a hashed name.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
  },
  server: {
    proxy: { '/graphql': { target: 'http://localhost:4000', ws: true } },
  },
});
