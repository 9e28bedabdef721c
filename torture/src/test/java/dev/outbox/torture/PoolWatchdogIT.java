package dev.outbox.torture;

import static org.assertj.core.api.Assertions.assertThat;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import dev.outbox.testkit.TestDatabase;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.sql.Connection;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Why a consumer's pool could stay at {@code total=0} while PostgreSQL served every other process
 * (RELIABILITY.md): HikariCP opens connections on a single thread, and with pgjdbc's defaults a
 * connection attempt whose server end never answers the startup handshake blocks that thread for
 * good; Hikari's {@code connectionTimeout} only bounds the callers' wait. The pools of the torture
 * run bound every attempt with pgjdbc's own timeouts ({@link PoolWatchdog#boundConnectionAttempts}).
 */
@Tag("integration")
class PoolWatchdogIT {

    @Test
    @Timeout(120)
    void aPoolWithBoundedConnectionAttemptsRefillsAfterAHandshakeThatNeverAnswers() throws Exception {
        try (TestDatabase db = TestDatabase.create();
                Gate gate = new Gate(URI.create(db.jdbcUrl().substring("jdbc:".length())))) {
            String url = "jdbc:postgresql://127.0.0.1:" + gate.port() + "/" + db.name();
            HikariConfig bounded = config(url, "bounded");
            PoolWatchdog.boundConnectionAttempts(bounded);
            // the gate answers the SSL request of every connection it accepts and then nothing, as a
            // server whose backend hangs in its startup does; the pools' first attempts hang there
            try (HikariDataSource plain = new HikariDataSource(config(url, "plain"));
                    HikariDataSource fixed = new HikariDataSource(bounded)) {
                Thread.sleep(2_000);
                assertThat(gate.held())
                        .as("connection attempts held by the gate")
                        .isGreaterThanOrEqualTo(2);
                // from now on the gate forwards new connections to PostgreSQL
                gate.open();
                long deadline = System.nanoTime() + 40_000_000_000L;
                boolean fixedServes = false;
                while (!fixedServes && System.nanoTime() < deadline) {
                    fixedServes = serves(fixed);
                }
                assertThat(fixedServes)
                        .as("the pool with pgjdbc's connect, login and socket timeouts serves again")
                        .isTrue();
                // the pool on pgjdbc's defaults still has its only adder thread in the first handshake
                assertThat(serves(plain))
                        .as("the pool on pgjdbc's defaults, after " + gate.held() + " held attempts")
                        .isFalse();
                assertThat(plain.getHikariPoolMXBean().getTotalConnections()).isZero();
            }
        }
    }

    private static HikariConfig config(String url, String name) {
        HikariConfig c = new HikariConfig();
        c.setJdbcUrl(url);
        c.setUsername("postgres");
        c.setPoolName(name);
        c.setMaximumPoolSize(2);
        c.setConnectionTimeout(1_000);
        c.setInitializationFailTimeout(-1);
        return c;
    }

    private static boolean serves(HikariDataSource pool) {
        try (Connection c = pool.getConnection()) {
            return c.isValid(2);
        } catch (Exception e) {
            return false;
        }
    }

    /** Holds the connections it accepts, unanswered, until opened; then forwards new ones to the target. */
    private static final class Gate implements AutoCloseable {
        private final URI target;
        private final ServerSocket server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
        private final List<Socket> sockets = new CopyOnWriteArrayList<>();
        private volatile boolean open;
        private volatile int held;

        Gate(URI target) throws IOException {
            this.target = target;
            Thread.ofPlatform().daemon().name("gate-accept").start(this::accept);
        }

        int port() {
            return server.getLocalPort();
        }

        int held() {
            return held;
        }

        void open() {
            open = true;
        }

        private void accept() {
            try {
                while (true) {
                    Socket client = server.accept();
                    sockets.add(client);
                    if (!open) {
                        held++;
                        Thread.ofPlatform().daemon().start(() -> stall(client));
                        continue;
                    }
                    Socket upstream = new Socket(target.getHost(), target.getPort());
                    sockets.add(upstream);
                    pipe(client.getInputStream(), upstream.getOutputStream());
                    pipe(upstream.getInputStream(), client.getOutputStream());
                }
            } catch (IOException e) {
                // closed
            }
        }

        /**
         * Answers pgjdbc's SSL request with "no" (pgjdbc bounds that wait by its sslResponseTimeout and
         * would then try again on a new connection), then reads the startup message and never answers:
         * a server whose backend hangs in its startup.
         */
        private static void stall(Socket client) {
            try {
                InputStream in = client.getInputStream();
                byte[] request = in.readNBytes(8);
                if (request.length == 8
                        && request[4] == 0x04
                        && request[5] == (byte) 0xd2
                        && request[6] == 0x16
                        && request[7] == 0x2f) {
                    client.getOutputStream().write('N');
                    client.getOutputStream().flush();
                }
                in.transferTo(OutputStream.nullOutputStream());
            } catch (IOException e) {
                // closed
            }
        }

        private static void pipe(InputStream in, OutputStream out) {
            Thread.ofPlatform().daemon().start(() -> {
                try (in;
                        out) {
                    in.transferTo(out);
                } catch (IOException e) {
                    // one side closed
                }
            });
        }

        @Override
        public void close() throws IOException {
            server.close();
            for (Socket s : sockets) {
                s.close();
            }
        }
    }
}
