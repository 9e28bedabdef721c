package dev.outbox.http.server.internal;

import jakarta.servlet.ServletOutputStream;
import jakarta.servlet.WriteListener;
import jakarta.servlet.http.HttpServletResponse;
import jakarta.servlet.http.HttpServletResponseWrapper;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.OutputStreamWriter;
import java.io.PrintWriter;
import java.nio.charset.Charset;
import java.nio.charset.StandardCharsets;
import java.util.Locale;

/**
 * Holds the application's response body back until the transaction has committed: status and
 * headers go to the real response (which stays uncommitted), the body goes to memory. Nothing
 * reaches the client before the key, the business write and the stored response are durable.
 *
 * <p>The body held is bounded: past {@code maxBytes} a write throws an {@link IOException} (the
 * writer, which swallows it, sets its error flag), nothing more is kept, and {@link #overflowed()}
 * tells the filter, which rolls everything back whatever the handler answered.
 */
public final class CapturingResponse extends HttpServletResponseWrapper {
    private final ByteArrayOutputStream buffer = new ByteArrayOutputStream();
    private final int maxBytes;
    private boolean overflowed;
    private boolean errorSent;
    private String errorMessage;
    private final OutputStream bounded = new OutputStream() {
        @Override
        public void write(int b) throws IOException {
            if (errorSent) {
                return; // the response is the error page's: writes after sendError are ignored, as by a container
            }
            room(1);
            buffer.write(b);
        }

        @Override
        public void write(byte[] b, int off, int len) throws IOException {
            if (errorSent) {
                return;
            }
            room(len);
            buffer.write(b, off, len);
        }
    };
    private ServletOutputStream stream;
    private PrintWriter writer;

    /**
     * @param response the container's response
     * @param maxBytes the largest body held
     */
    public CapturingResponse(HttpServletResponse response, int maxBytes) {
        super(response);
        this.maxBytes = maxBytes;
    }

    /** @return the body written so far */
    public byte[] body() {
        if (writer != null) {
            writer.flush();
        }
        return buffer.toByteArray();
    }

    /**
     * @return whether the handler answered with {@code sendError}: the container's error page (the
     *     application's, under Spring Boot) answers, once the transaction has ended, with {@link
     *     #getStatus()} and {@link #errorMessage()}
     */
    public boolean errorSent() {
        return errorSent;
    }

    /** @return the reason given to {@code sendError}, or null for none */
    public String errorMessage() {
        return errorMessage;
    }

    /** @return whether the handler wrote more than the largest body held; what was written is incomplete */
    public boolean overflowed() {
        if (writer != null) {
            writer.flush();
        }
        return overflowed;
    }

    private void room(int len) throws IOException {
        if (overflowed || len > maxBytes - buffer.size()) {
            overflowed = true;
            throw new IOException("the response body is larger than " + maxBytes
                    + " bytes (maxResponseBytes), the most an Idempotency-Key response holds to store and send after"
                    + " the commit");
        }
    }

    @Override
    public ServletOutputStream getOutputStream() {
        if (writer != null) {
            throw new IllegalStateException("getWriter() was already called for this response");
        }
        if (stream == null) {
            stream = new ServletOutputStream() {
                @Override
                public void write(int b) throws IOException {
                    bounded.write(b);
                }

                @Override
                public void write(byte[] b, int off, int len) throws IOException {
                    bounded.write(b, off, len);
                }

                @Override
                public boolean isReady() {
                    return true;
                }

                @Override
                public void setWriteListener(WriteListener listener) {
                    try {
                        listener.onWritePossible();
                    } catch (IOException e) {
                        listener.onError(e);
                    }
                }
            };
        }
        return stream;
    }

    @Override
    public PrintWriter getWriter() {
        if (stream != null) {
            throw new IllegalStateException("getOutputStream() was already called for this response");
        }
        if (writer == null) {
            String encoding = getCharacterEncoding();
            Charset charset = encoding == null ? StandardCharsets.ISO_8859_1 : Charset.forName(encoding);
            // the container names the writer's charset in the Content-Type when its own getWriter() is called,
            // which this wrapper never does: set it, so that the body sent and the one stored say how they are
            // encoded
            if (!errorSent) {
                super.setCharacterEncoding(charset.name());
            }
            writer = new PrintWriter(new OutputStreamWriter(bounded, charset));
        }
        return writer;
    }

    @Override
    public void setLocale(Locale locale) {
        if (!errorSent) {
            super.setLocale(locale);
        }
    }

    @Override
    public void setBufferSize(int size) {
        if (!errorSent) {
            super.setBufferSize(size);
        }
    }

    @Override
    public void setCharacterEncoding(String encoding) {
        if (writer == null && !errorSent) { // as the servlet specification says: no effect once the writer is taken
            super.setCharacterEncoding(encoding);
        }
    }

    @Override
    public void flushBuffer() {
        if (writer != null) {
            writer.flush();
        }
    }

    /**
     * @return false until the handler sends an error: the real response stays uncommitted until the
     *     transaction has; after {@code sendError}, true, as the container answers, so that frameworks
     *     write nothing more
     */
    @Override
    public boolean isCommitted() {
        return errorSent;
    }

    // after sendError a container ignores changes of status and headers (the error page's are its own): so does
    // this wrapper, so that what the response policy reads and what is stored is the error

    @Override
    public void setStatus(int sc) {
        if (!errorSent) {
            super.setStatus(sc);
        }
    }

    @Override
    public void setContentType(String type) {
        if (!errorSent) {
            super.setContentType(type);
        }
    }

    @Override
    public void setDateHeader(String name, long date) {
        if (!errorSent) {
            super.setDateHeader(name, date);
        }
    }

    @Override
    public void addDateHeader(String name, long date) {
        if (!errorSent) {
            super.addDateHeader(name, date);
        }
    }

    @Override
    public void resetBuffer() {
        if (writer != null) {
            writer.flush();
        }
        buffer.reset(); // an overflow stays: the request fails whatever it writes next
    }

    /**
     * Clears the body held, the status and headers, the error sent, and which of {@link #getWriter()}
     * and {@link #getOutputStream()} was called, as the container's {@code reset()} does: either may be
     * called after it. An overflow stays.
     */
    @Override
    public void reset() {
        super.reset();
        resetBuffer();
        writer = null;
        stream = null;
        errorSent = false;
        errorMessage = null;
    }

    @Override
    public void setContentLength(int len) {
        // set from the buffered body when it is sent
    }

    @Override
    public void setContentLengthLong(long len) {
        // set from the buffered body when it is sent
    }

    @Override
    public void setHeader(String name, String value) {
        if (!errorSent && !"Content-Length".equalsIgnoreCase(name)) {
            super.setHeader(name, value);
        }
    }

    @Override
    public void addHeader(String name, String value) {
        if (!errorSent && !"Content-Length".equalsIgnoreCase(name)) {
            super.addHeader(name, value);
        }
    }

    @Override
    public void setIntHeader(String name, int value) {
        if (!errorSent && !"Content-Length".equalsIgnoreCase(name)) {
            super.setIntHeader(name, value);
        }
    }

    @Override
    public void addIntHeader(String name, int value) {
        if (!errorSent && !"Content-Length".equalsIgnoreCase(name)) {
            super.addIntHeader(name, value);
        }
    }

    @Override
    public void sendError(int sc) {
        sendError(sc, null);
    }

    /**
     * Holds the error back like a body: the status goes to the real response, and the filter sends the
     * error with its reason once the transaction has ended, so that the container's error page answers
     * as it does without the filter. The reason counts toward {@code maxBytes}, as it is stored for
     * replay.
     */
    @Override
    public void sendError(int sc, String msg) {
        if (errorSent) {
            throw new IllegalStateException("sendError was already called for this response");
        }
        resetBuffer();
        setStatus(sc);
        errorSent = true;
        errorMessage = msg;
        if (msg != null && msg.getBytes(StandardCharsets.UTF_8).length > maxBytes) {
            overflowed = true;
        }
    }

    @Override
    public void sendRedirect(String location) {
        sendRedirect(location, HttpServletResponse.SC_FOUND, true);
    }

    // Servlet 6.1's forms (the redirect-after-POST 303): its wrapper passes them straight to the container,
    // which would send the redirect before the transaction commits. Declared here without @Override, since
    // the module compiles against Servlet 6.0; on a 6.1 container they override the wrapper's.

    /** Servlet 6.1: a redirect with the given status, captured like {@link #sendRedirect(String)}. */
    public void sendRedirect(String location, int sc) {
        sendRedirect(location, sc, true);
    }

    /** Servlet 6.1: a 302 redirect, the body written so far kept unless {@code clearBuffer}. */
    public void sendRedirect(String location, boolean clearBuffer) {
        sendRedirect(location, HttpServletResponse.SC_FOUND, clearBuffer);
    }

    /** Servlet 6.1: a redirect with the given status, the body written so far kept unless {@code clearBuffer}. */
    public void sendRedirect(String location, int sc, boolean clearBuffer) {
        if (errorSent) {
            throw new IllegalStateException("sendError was already called for this response: it cannot redirect");
        }
        if (clearBuffer) {
            resetBuffer();
        }
        setStatus(sc);
        setHeader("Location", location);
    }
}
