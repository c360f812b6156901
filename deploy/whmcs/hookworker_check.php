<?php
/**
 * hookworker_check.php: command-line check of the hookworker WHMCS hook.
 * Do NOT copy this file into includes/hooks/. Run it as the PHP user:
 *
 *   php hookworker_check.php --whmcs=/var/www/whmcs
 *       config, NATS connection (auth, TLS), which JetStream stream captures
 *       each subject, spool state
 *   php hookworker_check.php --whmcs=/var/www/whmcs --show=InvoicePaid --vars='{"invoiceid":123}'
 *       prints the events that hook would publish (built from live WHMCS
 *       data through localAPI); nothing is sent
 *   ... --show=... --vars=... --publish
 *       really publishes them (the worker will act on them!)
 *   php hookworker_check.php --whmcs=/var/www/whmcs --flush
 *       runs the AfterCronJob spool flush now
 *
 * Options: --config=<file> (default: the hook's own lookup),
 *          --hook=<path to hookworker.php> (default: <whmcs>/includes/hooks/hookworker.php,
 *          else the copy next to this script).
 * Without --whmcs only the configuration, NATS and spool checks run.
 */

if (PHP_SAPI !== 'cli' || !isset($_SERVER['SCRIPT_FILENAME']) || realpath($_SERVER['SCRIPT_FILENAME']) !== __FILE__) {
    return; // included by mistake (e.g. from includes/hooks): do nothing
}

$opt = getopt('', array('whmcs:', 'config:', 'hook:', 'show:', 'vars:', 'publish', 'flush', 'help'));
if (isset($opt['help'])) {
    echo preg_replace('/^ ?\* ?/m', '', substr(file_get_contents(__FILE__), 6, strpos(file_get_contents(__FILE__), '*/') - 6));
    exit(0);
}
if (isset($opt['config'])) {
    define('HOOKWORKER_CONFIG', (string) $opt['config']);
}
$hookFile = isset($opt['hook']) ? (string) $opt['hook'] : '';
if (isset($opt['whmcs'])) {
    $root = rtrim((string) $opt['whmcs'], '/');
    if (!is_file($root . '/init.php')) {
        fwrite(STDERR, "no init.php in $root\n");
        exit(2);
    }
    chdir($root);
    require $root . '/init.php';
    if ($hookFile === '' && is_file($root . '/includes/hooks/hookworker.php')) {
        $hookFile = $root . '/includes/hooks/hookworker.php';
    }
}
if (!defined('WHMCS')) {
    define('WHMCS', true);
}
if (!class_exists('Hookworker', false)) {
    require $hookFile !== '' ? $hookFile : __DIR__ . '/hookworker.php';
}

$failed = false;
$say = function ($ok, $msg) use (&$failed) {
    echo ($ok === null ? '  ' : ($ok ? 'ok ' : 'FAIL ')) . $msg . "\n";
    if ($ok === false) {
        $failed = true;
    }
};

$cfg = Hookworker::config();
if ($cfg === null) {
    $say(false, 'configuration: none or invalid (see the messages above / the Activity Log)');
    exit(1);
}
$say(true, 'configuration: instance "' . $cfg['instance'] . '", servers ' . implode(', ', $cfg['servers']) .
    ', auth ' . ($cfg['token'] !== '' ? 'token' : ($cfg['user'] !== '' ? 'user ' . $cfg['user'] : 'none')) .
    ', timeout ' . $cfg['timeout'] . ' s, spool ' . $cfg['spool_dir']);

try {
    $t = microtime(true);
    $nats = HookworkerNats::connectAny($cfg, microtime(true) + max(2.0, $cfg['timeout']));
    $info = $nats->info();
    $say(true, sprintf('NATS: connected in %.1f ms to %s %s (server %s, TLS %s, JetStream %s)', (microtime(true) - $t) * 1000,
        isset($info['server_name']) ? $info['server_name'] : '?', isset($info['version']) ? 'v' . $info['version'] : '',
        isset($info['server_id']) ? substr($info['server_id'], 0, 8) : '?',
        !empty($info['tls_required']) || strncmp($cfg['servers'][0], 'tls://', 6) === 0 ? 'yes' : 'no',
        !empty($info['jetstream']) ? 'yes' : 'no'));
    foreach (Hookworker::inboundTypes() as $type) {
        $subject = 'whmcs.' . $cfg['instance'] . '.' . $type;
        $r = $nats->request('$JS.API.STREAM.NAMES', json_encode(array('subject' => $subject)), microtime(true) + 2);
        $names = isset($r['streams']) && is_array($r['streams']) ? $r['streams'] : array();
        $ok = count($names) === 1 && ($cfg['expected_stream'] === '' || $names[0] === $cfg['expected_stream']);
        $say($ok, 'stream for ' . $subject . ': ' . (count($names) ? implode(', ', $names) : 'NONE (publishes would get 503 no responders)'));
    }
    $nats->close();
} catch (Throwable $e) {
    $say(false, 'NATS: ' . $e->getMessage());
}

if (isset($nats)) {
    // The worker answers request-reply (events/rpc.go): needed by the
    // hookworker module's Test Connection, single sign-on and status tab, not
    // by the hooks (their events wait in the stream until a worker runs).
    try {
        $st = Hookworker::ask('hookworker.rpc.status', array(), 3.0);
        $say(true, 'worker: ' . $st['worker'] . ' answers (' . (!empty($st['ready']) ? 'ready' : 'not ready: ' . $st['not_ready']) .
            ', ' . $st['pending'] . ' pending, ' . $st['dead_letters'] . ' dead letter(s))');
    } catch (Throwable $e) {
        $say(null, 'worker: ' . $e->getMessage() . ' (events wait in the stream until one runs; the hookworker module\'s Test Connection, single sign-on and status tab need one)');
    }
}

$spool = new HookworkerSpool($cfg['spool_dir']);
if (!is_dir($spool->dir())) {
    $say(null, 'spool: ' . $spool->dir() . ' does not exist yet (created on first use; its parent must be writable)');
} else {
    $entries = $spool->entries();
    $corrupt = glob($spool->dir() . '/corrupt/*.json*') ?: array();
    $say(is_writable($spool->dir()), 'spool: ' . $spool->dir() . ': ' . count($entries) . ' event(s) waiting' .
        (count($entries) ? ', oldest ' . $entries[0] : '') . '; corrupt/: ' . count(preg_grep('/\.reason$/', $corrupt, PREG_GREP_INVERT)) . ' file(s)');
}

if (isset($opt['show'])) {
    $vars = isset($opt['vars']) ? json_decode((string) $opt['vars'], true) : array();
    if (!is_array($vars)) {
        fwrite(STDERR, "--vars must be a JSON object\n");
        exit(2);
    }
    $events = Hookworker::build((string) $opt['show'], $vars, $cfg);
    foreach ($events as $ev) {
        echo "\n" . $ev[1] . ' -> whmcs.' . $cfg['instance'] . '.' . $ev[0] . "\n" .
            json_encode($ev[2], JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE) . "\n";
    }
    if (count($events) === 0) {
        $say(null, $opt['show'] . ': no event for these variables');
    }
    if (isset($opt['publish']) && count($events) > 0) {
        Hookworker::publish($events, $cfg);
        $say(Hookworker::$last !== null && Hookworker::$last['error'] === null, 'publish: ' . json_encode(Hookworker::$last));
    }
}
if (isset($opt['flush'])) {
    $r = Hookworker::cronFlush();
    $say($r !== null && $r['error'] === null, 'flush: ' . json_encode($r));
}
exit($failed ? 1 : 0);
