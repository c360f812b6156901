<?php
// Measures the time the hook adds to a WHMCS request. Run by
// scripts/bench-hook (which starts nats-server); reads:
//   HW_SERVERS  the running nats-server (nats://127.0.0.1:port)
//   BENCH_N     invocations per case (default 500)
//   BENCH_TMP   scratch directory for spools
// Each invocation simulates a fresh request (new request id, no per-request
// state, a new NATS connection) and is timed with hrtime around run_hook().

error_reporting(E_ALL);
ini_set('display_errors', 'stderr');
putenv('HOOKWORKER_CONFIG=' . __DIR__ . '/config_env.php');
require __DIR__ . '/whmcs_stub.php';

$n = (int) (getenv('BENCH_N') ?: 500);
$tmp = getenv('BENCH_TMP') ?: sys_get_temp_dir() . '/hookworker-bench';
$up = getenv('HW_SERVERS');

function setenvs(array $kv)
{
    foreach ($kv as $k => $v) {
        putenv($k . '=' . $v);
    }
    Hookworker::resetConfig();
}

function rmrf($d)
{
    if (!is_dir($d)) {
        return;
    }
    foreach (scandir($d) as $f) {
        if ($f === '.' || $f === '..') {
            continue;
        }
        is_dir("$d/$f") ? rmrf("$d/$f") : unlink("$d/$f");
    }
    rmdir($d);
}

function params($sid)
{
    return array('params' => array('serviceid' => $sid, 'userid' => 7, 'pid' => 5, 'domain' => 'backup1.example.com',
        'username' => 'ada101', 'password' => 'S3cr3t-svc-pass', 'serverpassword' => 'S3cr3t-server-pass',
        'serveraccesshash' => 'S3cr3t-accesshash', 'configoptions' => array('Storage GB' => 100)));
}

function pct(array $s, $p)
{
    sort($s);
    $i = (int) ceil($p / 100 * count($s)) - 1;
    return $s[max(0, min(count($s) - 1, $i))];
}

function runCase($label, $count, $hook, $varsFn, $expect)
{
    $times = array();
    $bad = 0;
    for ($i = 0; $i < $count; $i++) {
        Hookworker::resetRequest();
        $GLOBALS['stub_activity'] = array();
        $t = hrtime(true);
        run_hook($hook, $varsFn($i));
        $times[] = (hrtime(true) - $t) / 1e6;
        $l = Hookworker::$last;
        if ($l === null || $l[$expect] < 1) {
            $bad++;
        }
    }
    printf("%-58s n=%-4d median %8.3f ms   p99 %8.3f ms   max %8.3f ms%s\n", $label, $count,
        pct($times, 50), pct($times, 99), max($times), $bad ? "   ($bad not $expect!)" : '');
}

// The stream, created as the worker does, through the JetStream API.
setenvs(array('HW_SERVERS' => $up, 'HW_SPOOL' => "$tmp/spool-setup"));
$cfg = Hookworker::config();
$c = HookworkerNats::connectAny($cfg, microtime(true) + 5);
$r = $c->request('$JS.API.STREAM.CREATE.WHMCS_EVENTS', json_encode(array('name' => 'WHMCS_EVENTS',
    'subjects' => array('whmcs.>'), 'storage' => 'file', 'duplicate_window' => 300000000000)), microtime(true) + 5);
$c->close();
if (isset($r['error']) && (!isset($r['error']['err_code']) || $r['error']['err_code'] != 10058)) {
    fwrite(STDERR, 'stream create failed: ' . json_encode($r) . "\n");
    exit(1);
}

// A port nobody listens on, and a "black hole" that accepts TCP but never
// says anything (a hung server or a proxy in front of a dead one).
$s = stream_socket_server('tcp://127.0.0.1:0');
$refused = 'nats://' . stream_socket_get_name($s, false);
fclose($s);
$hole = stream_socket_server('tcp://127.0.0.1:0', $e1, $e2, STREAM_SERVER_BIND | STREAM_SERVER_LISTEN);
$holeUrl = 'nats://' . stream_socket_get_name($hole, false);

$base = array('HW_TIMEOUT' => '1', 'HW_INSTANCE' => 'bench');
$k = 0;
$case = function ($label, $count, array $env, $hook, $varsFn, $expect) use ($base, $tmp, &$k) {
    $k++;
    rmrf("$tmp/spool-$k");
    setenvs(array_merge($base, array('HW_SPOOL' => "$tmp/spool-$k"), $env));
    runCase($label, $count, $hook, $varsFn, $expect);
};
$suspend = function ($i) {
    return params(100000 + $i);
};

$case('NATS up: AfterModuleSuspend (1 event)', $n, array('HW_SERVERS' => $up, 'HW_DOWN_BACKOFF' => '0'), 'AfterModuleSuspend', $suspend, 'published');
$case('NATS up: InvoicePaid 900 (3 events, stub localAPI)', $n, array('HW_SERVERS' => $up, 'HW_DOWN_BACKOFF' => '0'), 'InvoicePaid', function ($i) {
    return array('invoiceid' => 900);
}, 'published');
$case('NATS down, refused, down_backoff=0: spool', $n, array('HW_SERVERS' => $refused, 'HW_DOWN_BACKOFF' => '0'), 'AfterModuleSuspend', $suspend, 'spooled');
$case('NATS down, refused, down_backoff=5 (default): spool', $n, array('HW_SERVERS' => $refused, 'HW_DOWN_BACKOFF' => '5'), 'AfterModuleSuspend', $suspend, 'spooled');
$nh = min($n, (int) (getenv('BENCH_N_HOLE') ?: 10));
$case('NATS hung (accepts, silent), down_backoff=0: spool', $nh, array('HW_SERVERS' => $holeUrl, 'HW_DOWN_BACKOFF' => '0'), 'AfterModuleSuspend', $suspend, 'spooled');
$case('NATS hung (accepts, silent), down_backoff=5: spool', $n, array('HW_SERVERS' => $holeUrl, 'HW_DOWN_BACKOFF' => '5'), 'AfterModuleSuspend', $suspend, 'spooled');

// Drain the spool of the "refused, down_backoff=0" case with the cron flush.
setenvs(array_merge($base, array('HW_SERVERS' => $up, 'HW_SPOOL' => "$tmp/spool-3")));
$before = (new HookworkerSpool("$tmp/spool-3"))->count();
$t = hrtime(true);
$res = Hookworker::cronFlush();
printf("%-58s %d events in %.3f s (%.0f events/s), %d left\n", 'AfterCronJob flush of the spool', $res['sent'],
    ($ns = (hrtime(true) - $t) / 1e9), $res['sent'] / max($ns, 1e-9), $res['left']);
if ($res['sent'] !== $before || $res['left'] !== 0) {
    fwrite(STDERR, "flush incomplete: $before spooled, " . json_encode($res) . "\n");
    exit(1);
}
fclose($hole);
