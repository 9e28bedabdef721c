package dev.outbox.http.client;

import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.http.HttpResponse;
import java.util.List;

/** InputStream bodies that note themselves when made and when closed. */
final class TrackedBodies {
    private TrackedBodies() {}

    /**
     * @param bodies gets every body the handler makes, in order
     * @param closed gets every body closed, in order
     * @return a body handler of InputStream bodies that note both
     */
    static HttpResponse.BodyHandler<InputStream> handler(List<InputStream> bodies, List<InputStream> closed) {
        return info -> HttpResponse.BodySubscribers.mapping(HttpResponse.BodySubscribers.ofInputStream(), in -> {
            InputStream tracked = new FilterInputStream(in) {
                @Override
                public void close() throws IOException {
                    closed.add(this);
                    super.close();
                }
            };
            bodies.add(tracked);
            return tracked;
        });
    }
}
