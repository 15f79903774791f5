import type { Request, Response } from 'express';
import { renderPage, type Views } from './views/render.js';

/** Headers of every page the OP's own screens send: never cached, never framed. */
export const PAGE_HEADERS: Readonly<Record<string, string>> = {
  'Cache-Control': 'no-store',
  'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: data:; frame-ancestors 'none'",
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
};

/** Sets `PAGE_HEADERS` on an Express response. */
export function pageHeaders(res: Response): void {
  res.set(PAGE_HEADERS);
}

/** Titles of the error page by status. */
const TITLES: Record<number, string> = {
  400: 'This request cannot be completed',
  403: 'This form has expired',
  429: 'Too many attempts',
  500: 'Something went wrong',
};

/** Answers with the error view: status, stable code, a message safe to show, never a stack. */
export async function sendErrorPage(
  req: Request, res: Response, views: Views,
  e: { status: number; code: string; message: string; title?: string; backUrl?: string },
): Promise<void> {
  const title = e.title ?? TITLES[e.status] ?? 'Error';
  let html: string;
  try {
    html = await renderPage(req, views, 'error', { title, status: e.status, code: e.code, message: e.message, backUrl: e.backUrl });
  } catch {
    html = `<!DOCTYPE html><title>Error</title><h1>Error</h1><p>${e.code}</p>`; // the app's error view itself failed
  }
  pageHeaders(res);
  res.status(e.status).type('html').send(html);
}
