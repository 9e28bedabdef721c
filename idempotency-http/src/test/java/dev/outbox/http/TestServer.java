package dev.outbox.http;

import jakarta.servlet.DispatcherType;
import jakarta.servlet.Filter;
import jakarta.servlet.http.HttpServlet;
import java.net.URI;
import java.util.EnumSet;
import org.eclipse.jetty.ee10.servlet.ErrorPageErrorHandler;
import org.eclipse.jetty.ee10.servlet.ServletContextHandler;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;

/** An embedded Jetty 12 (ee10) server on a free port, with the given filters in order, then a servlet. */
public final class TestServer implements AutoCloseable {
    private final Server server;
    private final URI base;

    private TestServer(Server server, URI base) {
        this.server = server;
        this.base = base;
    }

    public static TestServer start(HttpServlet servlet, Filter... filters) throws Exception {
        return start(servlet, null, null, filters);
    }

    /**
     * @param errorPage a servlet that answers every error status (400 to 599) sent with {@code
     *     sendError}, as Spring Boot's error controller does; the filters also see its error dispatch
     * @param errorPath where it is mapped, e.g. {@code /error}
     */
    public static TestServer withErrorPage(
            HttpServlet servlet, HttpServlet errorPage, String errorPath, Filter... filters) throws Exception {
        return start(servlet, errorPage, errorPath, filters);
    }

    private static TestServer start(HttpServlet servlet, HttpServlet errorPage, String errorPath, Filter... filters)
            throws Exception {
        Server server = new Server();
        ServerConnector connector = new ServerConnector(server);
        connector.setHost("127.0.0.1");
        connector.setPort(0);
        server.addConnector(connector);
        ServletContextHandler context = new ServletContextHandler();
        context.setContextPath("/");
        for (Filter f : filters) {
            context.addFilter(
                    f,
                    "/*",
                    errorPage == null
                            ? EnumSet.of(DispatcherType.REQUEST)
                            : EnumSet.of(DispatcherType.REQUEST, DispatcherType.ERROR));
        }
        context.addServlet(servlet, "/*");
        if (errorPage != null) {
            context.addServlet(errorPage, errorPath);
            ErrorPageErrorHandler errors = new ErrorPageErrorHandler();
            errors.addErrorPage(400, 599, errorPath);
            context.setErrorHandler(errors);
        }
        server.setHandler(context);
        server.start();
        return new TestServer(server, URI.create("http://127.0.0.1:" + connector.getLocalPort()));
    }

    public URI uri(String path) {
        return base.resolve(path);
    }

    public int port() {
        return base.getPort();
    }

    @Override
    public void close() throws Exception {
        server.stop();
    }
}
