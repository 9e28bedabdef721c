package dev.outbox.http.server;

/**
 * Decides, from the status a request's handler answered, what happens to the handler's writes and
 * to the key: commit them and store the response, roll them back and store the response, or roll
 * everything back and release the key.
 *
 * <p>The handler's status is the only reliable signal: frameworks such as Spring MVC turn
 * exceptions into 4xx and 5xx answers ({@code @ExceptionHandler}, {@code ResponseStatusException})
 * before they could reach the filter, so "throw to roll back" does not work there. {@link
 * #standard()} therefore commits only 2xx answers and the redirects of POST-redirect-GET.
 *
 * <p>A policy of your own can extend the standard one, e.g. for an endpoint whose 409 is a final
 * answer rather than a conflict that may clear:
 *
 * <pre>{@code
 * ResponsePolicy policy = status -> status == 409 ? Action.ROLL_BACK_AND_STORE : ResponsePolicy.standard().action(status);
 * }</pre>
 */
@FunctionalInterface
public interface ResponsePolicy {

    /** What happens to a request's writes and its key. */
    enum Action {
        /**
         * Commit the handler's writes (business rows, outbox rows) together with the key and the
         * response; every repeat gets the response replayed.
         */
        COMMIT,
        /**
         * Roll back the handler's writes, but keep the key with the response: every repeat gets this
         * answer replayed and nothing of the first attempt remains. For final refusals such as 400,
         * 404 or 422.
         */
        ROLL_BACK_AND_STORE,
        /**
         * Roll back the handler's writes and the key: nothing is stored, and a retry with the same key
         * runs anew. For answers that mean "not now" (408, 429, 5xx ...).
         */
        RELEASE
    }

    /**
     * @param status the status the handler answered, 100 to 599
     * @return what to do with the request's writes and key; never null
     */
    Action action(int status);

    /**
     * The default policy:
     *
     * <ul>
     *   <li><b>2xx</b>, and <b>301, 302, 303</b>: {@link Action#COMMIT}. A handler redirects a
     *       successful POST to its result (POST-redirect-GET: Spring MVC's {@code "redirect:"} and
     *       {@code sendRedirect} answer 302), and the client follows with a GET, so the work is done;
     *       <b>307 and 308</b> ask the client to send the same request elsewhere, and are stored with
     *       the writes rolled back, like the other final answers;
     *   <li><b>5xx</b>, and <b>401, 403, 408, 409, 423, 425, 429</b>: {@link Action#RELEASE}. These
     *       answers depend on the moment or on the caller's credentials rather than on the request
     *       (a timeout, a rate limit, a lock or conflict that may clear, an authentication or
     *       authorization that may be fixed), so storing them would repeat a stale refusal for the
     *       key's whole lifetime;
     *   <li>every other status (other 4xx such as 400, 404, 410, 422, and 1xx and other 3xx): {@link
     *       Action#ROLL_BACK_AND_STORE}: a final answer to that request, replayed, with no write
     *       left behind.
     * </ul>
     *
     * @return the policy
     */
    static ResponsePolicy standard() {
        return Standard.INSTANCE;
    }
}

/** {@link ResponsePolicy#standard()}. */
enum Standard implements ResponsePolicy {
    INSTANCE;

    @Override
    public Action action(int status) {
        if (status >= 200 && status < 300 || status == 301 || status == 302 || status == 303) {
            return Action.COMMIT;
        }
        if (status >= 500) {
            return Action.RELEASE;
        }
        return switch (status) {
            case 401, 403, 408, 409, 423, 425, 429 -> Action.RELEASE;
            default -> Action.ROLL_BACK_AND_STORE;
        };
    }

    @Override
    public String toString() {
        return "ResponsePolicy.standard()";
    }
}
