// A Curator LeaderLatch participant for tenure's interop tests, run as a
// single-file source program (Java 11+):
//
//   java -cp <curator and zookeeper jars> LatchMain.java <connect> <path> <id>
//
// Starts LeaderLatch(client, path, id) (children _c_<uuid>-latch-<seq>, the
// id as node data). Prints "STARTED <id>" once the latch has started,
// "LEADER <id>" when it gains leadership and "NOT_LEADER <id>" if it loses
// it. On stdin EOF or SIGTERM it closes the latch (deleting its node) and
// the client, prints "EXITED <id>" and exits 0.

import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.leader.LeaderLatchListener;
import org.apache.curator.retry.ExponentialBackoffRetry;

public class LatchMain {
    static synchronized void say(String line) {
        System.out.println(line);
        System.out.flush();
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: LatchMain.java <connect> <path> <id>");
            System.exit(2);
        }
        String connect = args[0], path = args[1], id = args[2];
        CuratorFramework client = CuratorFrameworkFactory.builder()
                .connectString(connect)
                .sessionTimeoutMs(4000)
                .connectionTimeoutMs(15000)
                .retryPolicy(new ExponentialBackoffRetry(100, 5))
                .build();
        client.start();
        if (!client.blockUntilConnected(20, TimeUnit.SECONDS)) {
            System.err.println("LatchMain: cannot connect to " + connect);
            System.exit(3);
        }
        LeaderLatch latch = new LeaderLatch(client, path, id);
        latch.addListener(new LeaderLatchListener() {
            @Override
            public void isLeader() {
                say("LEADER " + id);
            }

            @Override
            public void notLeader() {
                say("NOT_LEADER " + id);
            }
        });

        AtomicBoolean closed = new AtomicBoolean(false);
        Runnable close = () -> {
            if (!closed.compareAndSet(false, true)) {
                return;
            }
            try {
                latch.close();
            } catch (Exception e) {
                System.err.println("LatchMain: closing the latch: " + e);
            }
            client.close();
            say("EXITED " + id);
        };
        // SIGTERM runs shutdown hooks.
        Runtime.getRuntime().addShutdownHook(new Thread(close));

        latch.start();
        say("STARTED " + id);
        // Until the test closes our stdin (or dies).
        while (System.in.read() != -1) {
        }
        close.run();
        System.exit(0);
    }
}
