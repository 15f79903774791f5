import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A loopback server on a free port whose handler is attached once its URL is known. */
export interface Started {
  url: string;
  server: Server;
  handle(listener: RequestListener): void;
  close(): Promise<void>;
}

/**
 * Listens first (port 0), so the app can be built for its real URL.
 *
 * @example
 *   const s = await listenFirst('localhost');
 *   s.handle(createApp({ baseURL: s.url }));
 */
export async function listenFirst(host = '127.0.0.1'): Promise<Started> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}`,
    server,
    handle: (listener) => void server.on('request', listener),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
