package dev.outbox.http.server.internal;

import dev.outbox.http.server.IdempotencyKey;
import io.micrometer.core.instrument.Counter;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.io.InputStream;
import java.util.Collections;
import java.util.List;
import org.slf4j.Logger;

/**
 * The request side of {@code IdempotencyFilter}: a protected request gets in only with exactly one
 * valid {@code Idempotency-Key} (else 400), a body no larger than the limit (else 413) and a caller
 * its key can belong to (else 401). Each refusal is answered with a problem response and counted.
 */
public final class Admission {
    private final int maxBodyBytes;
    private final Logger logger;
    private final String log;
    private final Counter rejected;
    private final Counter tooLarge;
    private final Counter unidentified;
    private final Counter bodyUnavailable;

    /**
     * @param maxBodyBytes the largest body buffered
     * @param logger the filter's logger
     * @param log the prefix of the filter's log lines
     * @param rejected counts requests refused for their key
     * @param tooLarge counts requests refused for their body's size
     * @param unidentified counts requests refused for want of a caller
     * @param bodyUnavailable counts requests refused with 500 because a filter ahead read their body
     */
    public Admission(
            int maxBodyBytes,
            Logger logger,
            String log,
            Counter rejected,
            Counter tooLarge,
            Counter unidentified,
            Counter bodyUnavailable) {
        this.maxBodyBytes = maxBodyBytes;
        this.logger = logger;
        this.log = log;
        this.rejected = rejected;
        this.tooLarge = tooLarge;
        this.unidentified = unidentified;
        this.bodyUnavailable = bodyUnavailable;
    }

    /**
     * @param path the request's path inside the application
     * @return the request's key, or null when it was refused with 400
     */
    public String key(HttpServletRequest request, String path, HttpServletResponse response) throws IOException {
        List<String> values = Collections.list(request.getHeaders(IdempotencyKey.HEADER));
        String problem = null;
        String key = null;
        if (values.isEmpty()) {
            problem = request.getMethod() + " " + path + " requires an " + IdempotencyKey.HEADER
                    + " header. Mint one unique value per operation (e.g. a UUID), send it as " + IdempotencyKey.HEADER
                    + ": \"<uuid>\" and reuse it on every retry of that operation.";
        } else if (values.size() > 1) {
            problem = "The request has " + values.size() + " " + IdempotencyKey.HEADER + " headers; send exactly one.";
        } else {
            try {
                key = IdempotencyKey.parse(values.get(0));
            } catch (IllegalArgumentException e) {
                problem = e.getMessage();
            }
        }
        if (problem != null) {
            rejected.increment();
            logger.debug("{}400 for {} {}: {}", log, request.getMethod(), path, problem);
            Problems.send(response, 400, "Invalid Idempotency-Key", problem);
            return null;
        }
        return key;
    }

    /**
     * A request's body as the filter read it.
     *
     * @param content the bytes left in the body, handed on to the handler
     * @param fingerprinted what the key's fingerprint covers: the same bytes, or, for a form whose
     *     body a filter ahead parsed into the request's parameters, the canonical encoding of those
     *     parameters ({@link FormFields#encode})
     */
    public record Body(byte[] content, byte[] fingerprinted) {}

    /**
     * Reads the body, which the key's fingerprint covers. A body shorter than its {@code
     * Content-Length} was read before this filter. When nothing is left of a form and its fields are
     * among the request's parameters (a filter ahead parsed it: Spring's {@code FormContentFilter}
     * for PUT, PATCH and DELETE, or the container for a POST once a filter called {@code
     * getParameter}), the fingerprint covers those fields, which the handler reads in turn. Any
     * other body read before (a JSON body a filter consumed, part of a form): fingerprinting what is
     * left would let a key be reused with another body, so such a request is refused with 500, and
     * logged at ERROR, naming the cause.
     *
     * @param path the request's path inside the application
     * @return the request's body, read into memory, or null when it was refused with 413 or 500
     */
    public Body body(HttpServletRequest request, String path, HttpServletResponse response) throws IOException {
        long declared = request.getContentLengthLong();
        byte[] body = null;
        if (declared <= maxBodyBytes) {
            try (InputStream in = request.getInputStream()) {
                body = in.readNBytes(maxBodyBytes + 1);
            }
        }
        if (body == null || body.length > maxBodyBytes) {
            return refuseTooLarge(request, path, response);
        }
        // nothing left of a form whose fields are among the parameters: a filter ahead parsed the whole body
        // (sent chunked, without a Content-Length, an empty body is told from a parsed one by the same test)
        if (body.length == 0 && declared != 0 && FormFields.parsedAhead(request)) {
            byte[] fields = FormFields.encode(request.getParameterMap());
            if (declared < 0 && fields.length > maxBodyBytes) {
                // no Content-Length was checked against the limit: the fields' encoding counts instead
                return refuseTooLarge(request, path, response);
            }
            return new Body(body, fields);
        }
        if (declared >= 0 && body.length != declared) {
            bodyUnavailable.increment();
            logger.error(
                    "{}500 for {} {}: its body was read before the Idempotency-Key filter ({} of {} bytes left) and"
                            + " not parsed into the request's parameters as a form; order the filter before any filter"
                            + " that reads the request's body without leaving it readable (a form a filter ahead"
                            + " parses into the parameters is fingerprinted by its fields)",
                    log,
                    request.getMethod(),
                    path,
                    body.length,
                    declared);
            Problems.send(
                    response,
                    500,
                    "Request body unavailable to the idempotency check",
                    "The body of " + request.getMethod() + " " + path + " was read before its Idempotency-Key could"
                            + " be checked against it, so the request was not run. This is the server's"
                            + " configuration, not the request.");
            return null;
        }
        return new Body(body, body);
    }

    private Body refuseTooLarge(HttpServletRequest request, String path, HttpServletResponse response)
            throws IOException {
        tooLarge.increment();
        Problems.send(
                response,
                413,
                "Request body too large for an idempotent request",
                "The body of " + request.getMethod() + " " + path + " is larger than " + maxBodyBytes
                        + " bytes, the most this endpoint buffers to fingerprint and replay a request. Send a smaller body,"
                        + " or ask the operator to raise maxBodyBytes.");
        return null;
    }

    /**
     * Refuses a request whose scope names no caller with 401.
     *
     * @param path the request's path inside the application
     */
    public void refuseAnonymous(HttpServletRequest request, String path, HttpServletResponse response)
            throws IOException {
        unidentified.increment();
        logger.debug("{}401 for {} {}: no caller identity for the key's scope", log, request.getMethod(), path);
        Problems.send(
                response,
                401,
                "Authentication required for an idempotent request",
                request.getMethod() + " " + path
                        + " keeps idempotency keys per caller, and this request has no authenticated"
                        + " caller. Authenticate and retry with the same " + IdempotencyKey.HEADER
                        + ". (Operators: order"
                        + " IdempotencyFilter after authentication, or give it a ScopeResolver that names the caller.)");
    }
}
