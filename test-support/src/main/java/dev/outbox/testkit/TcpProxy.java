package dev.outbox.testkit;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Supplier;

/**
 * A TCP proxy on a free local port that forwards every connection to one target, for tests that
 * need a dependency to hang rather than fail: {@link #pause()} stops forwarding in both directions
 * without closing anything (what a black-holed network path or a frozen host looks like to a
 * client: no data, no FIN, no RST), {@link #resume()} forwards again, {@link #close()} closes the
 * listening socket and every connection.
 *
 * <p>While paused, new connections are accepted by the kernel but get no answer either. Bytes read
 * before a pause took effect are held and forwarded on resume, so a paused connection loses nothing.
 *
 * <pre>{@code
 * try (TcpProxy proxy = TcpProxy.start("127.0.0.1", 5432)) {
 *   String url = "jdbc:postgresql://127.0.0.1:" + proxy.port() + "/db";
 *   proxy.pause();   // statements on url now hang
 *   proxy.resume();  // and complete
 * }
 * }</pre>
 */
public final class TcpProxy implements AutoCloseable {
    /** What the proxy does with a connection a client opens, decided as it is accepted. */
    public enum Admission {
        /** Forwarded to the target (while the proxy is not paused). */
        FORWARD,
        /** Closed at once: the client sees the connection refused or reset, as from a restarting server. */
        REFUSE,
        /** Kept open and never answered: a black-holed network for this connection alone. */
        HOLD
    }

    private final String targetHost;
    private final int targetPort;
    private final Supplier<Admission> admission;
    private final ServerSocket server;
    private final List<Socket> sockets = new CopyOnWriteArrayList<>();
    private final Object gate = new Object();
    private boolean paused; // guarded by gate
    private volatile boolean closed;

    private TcpProxy(String targetHost, int targetPort, Supplier<Admission> admission) throws IOException {
        this.targetHost = targetHost;
        this.targetPort = targetPort;
        this.admission = admission;
        this.server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
        Thread acceptor = new Thread(this::acceptLoop, "tcp-proxy-" + server.getLocalPort() + "-accept");
        acceptor.setDaemon(true);
        acceptor.start();
    }

    /**
     * Starts a proxy on a free loopback port.
     *
     * @param targetHost where connections are forwarded
     * @param targetPort its port
     * @return the running proxy; close it when done
     */
    public static TcpProxy start(String targetHost, int targetPort) {
        return start(targetHost, targetPort, () -> Admission.FORWARD);
    }

    /**
     * Starts a proxy on a free loopback port that asks {@code admission} what to do with each connection
     * a client opens, as it is accepted.
     *
     * @param targetHost where forwarded connections go
     * @param targetPort its port
     * @param admission asked once per connection, on the thread that handles it
     * @return the running proxy; close it when done
     */
    public static TcpProxy start(String targetHost, int targetPort, Supplier<Admission> admission) {
        try {
            return new TcpProxy(targetHost, targetPort, admission);
        } catch (IOException e) {
            throw new UncheckedIOException(
                    "could not open a local port for a TCP proxy to " + targetHost + ":" + targetPort, e);
        }
    }

    /** @return the local port clients connect to (on the loopback address) */
    public int port() {
        return server.getLocalPort();
    }

    /** Stops forwarding in both directions, without closing any connection. */
    public void pause() {
        synchronized (gate) {
            paused = true;
        }
    }

    /** Forwards again, including what was held while paused. */
    public void resume() {
        synchronized (gate) {
            paused = false;
            gate.notifyAll();
        }
    }

    /** @return whether forwarding is paused */
    public boolean isPaused() {
        synchronized (gate) {
            return paused;
        }
    }

    /** Closes every connection (clients see the connection reset or closed) and stops listening. */
    @Override
    public void close() {
        closed = true;
        resume();
        closeQuietly(server);
        for (Socket s : sockets) {
            closeQuietly(s);
        }
        sockets.clear();
    }

    private void acceptLoop() {
        while (!closed) {
            Socket client;
            try {
                client = server.accept();
            } catch (IOException e) {
                return; // closed
            }
            Thread t = new Thread(() -> connect(client), "tcp-proxy-" + port() + "-connect");
            t.setDaemon(true);
            t.start();
        }
    }

    private void connect(Socket client) {
        sockets.add(client);
        switch (admission.get()) {
            case REFUSE -> {
                closeQuietly(client);
                sockets.remove(client);
                return;
            }
            case HOLD -> {
                return; // open until the proxy closes
            }
            case FORWARD -> {}
        }
        try {
            awaitForwarding();
            Socket upstream = new Socket();
            sockets.add(upstream);
            upstream.connect(new InetSocketAddress(targetHost, targetPort), 10_000);
            if (closed) {
                closeQuietly(upstream);
                closeQuietly(client);
                return;
            }
            pump(client, upstream, "up");
            pump(upstream, client, "down");
        } catch (IOException | InterruptedException e) {
            closeQuietly(client);
        }
    }

    private void pump(Socket from, Socket to, String direction) {
        Thread t = new Thread(
                () -> {
                    byte[] buffer = new byte[16 * 1024];
                    try (InputStream in = from.getInputStream();
                            OutputStream out = to.getOutputStream()) {
                        int n;
                        while ((n = in.read(buffer)) >= 0) {
                            awaitForwarding();
                            if (closed) {
                                break;
                            }
                            out.write(buffer, 0, n);
                            out.flush();
                        }
                    } catch (IOException | InterruptedException e) {
                        // the other side closed, or the proxy did
                    } finally {
                        closeQuietly(from);
                        closeQuietly(to);
                        sockets.remove(from);
                        sockets.remove(to);
                    }
                },
                "tcp-proxy-" + port() + "-" + direction);
        t.setDaemon(true);
        t.start();
    }

    private void awaitForwarding() throws InterruptedException {
        synchronized (gate) {
            while (paused && !closed) {
                gate.wait();
            }
        }
    }

    private static void closeQuietly(AutoCloseable c) {
        try {
            c.close();
        } catch (Exception e) {
            // closing anyway
        }
    }

    @Override
    public String toString() {
        return "TcpProxy[127.0.0.1:" + port() + " -> " + targetHost + ":" + targetPort + (isPaused() ? ", paused" : "")
                + "]";
    }
}
