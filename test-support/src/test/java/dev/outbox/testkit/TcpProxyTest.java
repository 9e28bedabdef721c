package dev.outbox.testkit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The proxy forwards, holds bytes without closing while paused, forwards them on resume, and closes. */
class TcpProxyTest {
    private ServerSocket echo;

    @BeforeEach
    void startEchoServer() throws IOException {
        echo = new ServerSocket(0, 10, InetAddress.getLoopbackAddress());
        Thread t = new Thread(() -> {
            while (!echo.isClosed()) {
                try {
                    Socket s = echo.accept();
                    Thread c = new Thread(() -> {
                        try (s;
                                InputStream in = s.getInputStream();
                                OutputStream out = s.getOutputStream()) {
                            int b;
                            while ((b = in.read()) >= 0) {
                                out.write(b);
                                out.flush();
                            }
                        } catch (IOException e) {
                            // client gone
                        }
                    });
                    c.setDaemon(true);
                    c.start();
                } catch (IOException e) {
                    return;
                }
            }
        });
        t.setDaemon(true);
        t.start();
    }

    @AfterEach
    void stopEchoServer() throws IOException {
        echo.close();
    }

    @Test
    void forwardsHoldsWhilePausedWithoutClosingAndForwardsOnResume() throws IOException {
        try (TcpProxy proxy = TcpProxy.start("127.0.0.1", echo.getLocalPort());
                Socket s = new Socket(InetAddress.getLoopbackAddress(), proxy.port())) {
            s.setSoTimeout(2_000);
            s.getOutputStream().write('a');
            assertThat(s.getInputStream().read()).isEqualTo('a');

            proxy.pause();
            s.setSoTimeout(500);
            s.getOutputStream().write('b');
            assertThatThrownBy(() -> s.getInputStream().read())
                    .as("no answer and no close while paused")
                    .isInstanceOf(SocketTimeoutException.class);
            assertThat(s.isClosed()).isFalse();

            proxy.resume();
            s.setSoTimeout(2_000);
            assertThat(s.getInputStream().read())
                    .as("the byte held while paused")
                    .isEqualTo('b');
        }
    }

    @Test
    void aConnectionOpenedWhilePausedWaitsAndCloseEndsIt() throws IOException {
        TcpProxy proxy = TcpProxy.start("127.0.0.1", echo.getLocalPort());
        proxy.pause();
        try (Socket s = new Socket(InetAddress.getLoopbackAddress(), proxy.port())) {
            s.setSoTimeout(500);
            s.getOutputStream().write('c');
            assertThatThrownBy(() -> s.getInputStream().read()).isInstanceOf(SocketTimeoutException.class);
            proxy.close();
            s.setSoTimeout(2_000);
            int read;
            try {
                read = s.getInputStream().read();
            } catch (IOException e) {
                read = -1; // reset counts as closed
            }
            assertThat(read).as("closed by the proxy").isEqualTo(-1);
        }
    }
}
