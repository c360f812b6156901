<?php
/**
 * hookworker: a WHMCS server (provisioning) module over the hookworker
 * events. Copy this folder to <whmcs>/modules/servers/hookworker/ and
 * assign module "hookworker" to a product (deploy/whmcs/README.md).
 *
 * Every lifecycle function (Create, Renew, Suspend, Unsuspend, Terminate,
 * Change Password, Change Package) publishes its event through the hooks'
 * own publisher and spool (includes/hooks/hookworker.php, loaded below:
 * shared code, not a copy) and returns "success" at once: the worker
 * provisions asynchronously and writes the result back. For a product whose
 * module is hookworker the hooks publish none of these actions (one source
 * of truth per action). Test Connection, single sign-on, the admin services
 * tab and "Retry now" ask the running worker over NATS request-reply,
 * bounded by a timeout (default 3 s): a worker that does not answer gives a
 * clear message, never a hung page.
 *
 * PHP 7.4 - 8.3, no Composer, no extensions beyond core + json.
 */

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

/**
 * Loads the hooks' publisher (HookworkerNats, HookworkerSpool, Hookworker)
 * unless WHMCS has already (it loads includes/hooks/ on every request).
 * HOOKWORKER_LIB may name the file elsewhere.
 */
function hookworker_lib(): bool
{
    if (class_exists('Hookworker', false)) {
        return true;
    }
    $candidates = array();
    if (defined('HOOKWORKER_LIB')) {
        $candidates[] = (string) constant('HOOKWORKER_LIB');
    }
    if (defined('ROOTDIR')) {
        $candidates[] = constant('ROOTDIR') . '/includes/hooks/hookworker.php';
    }
    $candidates[] = dirname(__DIR__, 3) . '/includes/hooks/hookworker.php';
    foreach ($candidates as $f) {
        if (is_file($f)) {
            require_once $f;
            break;
        }
    }
    return class_exists('Hookworker', false);
}

/** The error a module function returns when the hooks file is missing. */
function hookworker_no_lib(): string
{
    return 'hookworker: includes/hooks/hookworker.php is not installed (the module publishes through it; see deploy/whmcs/README.md)';
}

function hookworker_MetaData()
{
    return array(
        'DisplayName' => 'hookworker (asynchronous backup provisioning)',
        'APIVersion' => '1.1',
        'RequiresServer' => false,
        'ServiceSingleSignOnLabel' => 'Log in to the backup dashboard',
    );
}

/**
 * Module Settings. WHMCS hands them to every module call as configoption1..N
 * in this order, so the order is part of the contract: append, never
 * reorder.
 */
function hookworker_ConfigOptions()
{
    return array(
        'Provider' => array('Type' => 'dropdown', 'Options' => 'comet,storegrid,codeguard',
            'Description' => 'where the worker provisions this product (it must be configured at the worker)'),
        'Signup' => array('Type' => 'dropdown', 'Options' => 'signup_customer,signup_reseller', 'Default' => 'signup_customer',
            'Description' => 'Create: StoreGrid Signup Customer or Signup Reseller (Comet and CodeGuard: signup_customer)'),
        'Comet policy group' => array('Type' => 'text', 'Size' => '30',
            'Description' => 'Comet: policy_group_id, the PolicyID given to the user'),
        'Comet create policy group' => array('Type' => 'yesno',
            'Description' => 'Comet: create_policy_group, create/update that policy with the official module\'s restrictions'),
        'Comet Storage Vault template' => array('Type' => 'text', 'Size' => '30',
            'Description' => 'Comet: storage_vault_template, the StorageProvider id to request a Storage Vault from'),
        'CodeGuard plan' => array('Type' => 'text', 'Size' => '10',
            'Description' => 'CodeGuard: plan_id (required for CodeGuard)'),
        'StoreGrid storage GB' => array('Type' => 'text', 'Size' => '10',
            'Description' => 'StoreGrid: storage_allotted in GB (1024^3 bytes; required for StoreGrid)'),
        'StoreGrid reseller' => array('Type' => 'text', 'Size' => '30',
            'Description' => 'StoreGrid Signup Customer: reseller_name'),
        'More settings' => array('Type' => 'textarea', 'Rows' => '4', 'Cols' => '40',
            'Description' => 'other provider settings, one key=value per line (the catalog\'s setting names)'),
        'Request timeout' => array('Type' => 'text', 'Size' => '4', 'Default' => '3',
            'Description' => 'seconds to wait for the worker (Test Connection, SSO, services tab); 0.5-10'),
        'Comet web address' => array('Type' => 'text', 'Size' => '40',
            'Description' => 'Comet single sign-on: the address customers open (default: the worker\'s HOOKWORKER_COMET_URL)'),
    );
}

/**
 * The product's module settings as events carry them:
 * ['provider' => ..., 'signup' => ..., 'settings' => {...}], only the
 * chosen provider's keys. Throws InvalidArgumentException naming the
 * setting at fault.
 */
function hookworker_module_settings(array $params): array
{
    $o = function ($n) use ($params) {
        $k = 'configoption' . $n;
        return isset($params[$k]) && is_scalar($params[$k]) ? trim((string) $params[$k]) : '';
    };
    $provider = $o(1);
    if (!in_array($provider, array('comet', 'storegrid', 'codeguard'), true)) {
        throw new InvalidArgumentException('Module Settings: Provider must be comet, storegrid or codeguard, got "' . $provider . '"');
    }
    $signup = $o(2) !== '' ? $o(2) : 'signup_customer';
    if ($signup !== 'signup_customer' && $signup !== 'signup_reseller') {
        throw new InvalidArgumentException('Module Settings: Signup must be signup_customer or signup_reseller, got "' . $signup . '"');
    }
    $s = array();
    switch ($provider) {
        case 'comet':
            if ($o(3) !== '') {
                $s['policy_group_id'] = $o(3);
            }
            if ($o(4) === 'on' || $o(4) === 'yes') {
                $s['create_policy_group'] = 'yes';
            }
            if ($o(5) !== '') {
                $s['storage_vault_template'] = $o(5);
            }
            break;
        case 'codeguard':
            if ($o(6) !== '') {
                $s['plan_id'] = $o(6);
            }
            break;
        case 'storegrid':
            if ($o(7) !== '') {
                if (!preg_match('/^[0-9]+$/', $o(7)) || (int) $o(7) <= 0) {
                    throw new InvalidArgumentException('Module Settings: StoreGrid storage GB must be a positive whole number, got "' . $o(7) . '"');
                }
                $s['storage_allotted'] = (string) ((int) $o(7) * 1073741824);
            }
            if ($o(8) !== '') {
                $s['reseller_name'] = $o(8);
            }
            break;
    }
    foreach (preg_split('/\r\n|\r|\n/', $o(9)) as $i => $line) {
        $line = trim($line);
        if ($line === '' || $line[0] === '#') {
            continue;
        }
        $eq = strpos($line, '=');
        if ($eq === false || $eq === 0) {
            throw new InvalidArgumentException('Module Settings: More settings line ' . ($i + 1) . ' is not key=value: "' . $line . '"');
        }
        $s[trim(substr($line, 0, $eq))] = trim(substr($line, $eq + 1));
    }
    return array('provider' => $provider, 'signup' => $signup, 'settings' => (object) $s);
}

/** The Request timeout setting in seconds (default 3, 0.5 - 10). */
function hookworker_timeout(array $params): float
{
    $t = isset($params['configoption10']) && is_numeric($params['configoption10']) ? (float) $params['configoption10'] : 3.0;
    if ($t <= 0) {
        $t = 3.0;
    }
    return max(0.5, min($t, 10.0));
}

/** Logs a module call to WHMCS's module log (never a secret). */
function hookworker_log_call(string $action, array $request, $response): void
{
    if (function_exists('logModuleCall')) {
        logModuleCall('hookworker', $action, $request, $response, '', array());
    }
}

/**
 * Publishes the event of one lifecycle call and returns "success" at once,
 * also when NATS is down (the event is spooled and sent later). A wrong
 * Module Setting or missing WHMCS data is an error message: nothing was
 * published.
 */
function hookworker_lifecycle(string $fn, array $params): string
{
    try {
        if (!hookworker_lib()) {
            return hookworker_no_lib();
        }
        $cfg = Hookworker::config();
        if ($cfg === null) {
            return 'hookworker: no valid hook configuration (includes/hooks/hookworker/config.php); nothing was published';
        }
        $module = hookworker_module_settings($params);
        $ev = Hookworker::moduleEvent($fn, $params, $module, $cfg);
        Hookworker::publish(array($ev), $cfg);
        $st = Hookworker::$last;
        hookworker_log_call($fn, array('service' => isset($params['serviceid']) ? $params['serviceid'] : null, 'event' => $ev[1], 'type' => $ev[0]),
            $st === null ? 'already sent in this request' : (!empty($st['spooled']) ? 'spooled: ' . $st['error'] : 'published'));
        return 'success';
    } catch (Throwable $e) {
        return 'hookworker: ' . $e->getMessage();
    }
}

function hookworker_CreateAccount(array $params)
{
    return hookworker_lifecycle('CreateAccount', $params);
}

function hookworker_Renew(array $params)
{
    return hookworker_lifecycle('Renew', $params);
}

function hookworker_SuspendAccount(array $params)
{
    return hookworker_lifecycle('SuspendAccount', $params);
}

function hookworker_UnsuspendAccount(array $params)
{
    return hookworker_lifecycle('UnsuspendAccount', $params);
}

function hookworker_TerminateAccount(array $params)
{
    return hookworker_lifecycle('TerminateAccount', $params);
}

function hookworker_ChangePassword(array $params)
{
    return hookworker_lifecycle('ChangePassword', $params);
}

function hookworker_ChangePackage(array $params)
{
    return hookworker_lifecycle('ChangePackage', $params);
}

/**
 * Asks the worker (hookworker.rpc.*) and returns its reply; throws
 * HookworkerError with the message to show.
 */
function hookworker_ask(string $subject, array $req, float $timeout): array
{
    if (!hookworker_lib()) {
        throw new RuntimeException(hookworker_no_lib());
    }
    return Hookworker::ask($subject, $req, $timeout);
}

/**
 * Test Connection: the worker runs `providers check` now, for the product's
 * provider when WHMCS passes product settings, else for the provider a
 * hookworker server entry names as its Username, else for every provider the
 * worker has.
 */
function hookworker_TestConnection(array $params)
{
    try {
        $provider = isset($params['configoption1']) && is_scalar($params['configoption1']) ? trim((string) $params['configoption1']) : '';
        if ($provider === '' && isset($params['serverusername']) && in_array($params['serverusername'], array('comet', 'storegrid', 'codeguard'), true)) {
            $provider = (string) $params['serverusername']; // a hookworker server entry may name its provider as Username
        }
        $rep = hookworker_ask('hookworker.rpc.providers.check', array('provider' => $provider), hookworker_timeout($params));
        $failed = array();
        $ok = array();
        foreach (isset($rep['providers']) && is_array($rep['providers']) ? $rep['providers'] : array() as $c) {
            if (!empty($c['ok'])) {
                $ok[] = $c['provider'];
            } else {
                $failed[] = $c['provider'] . ': ' . (isset($c['error']) ? $c['error'] : 'failed');
            }
        }
        if (count($failed) > 0) {
            return array('success' => false, 'error' => 'worker ' . $rep['worker'] . ': ' . implode('; ', $failed));
        }
        if (count($ok) === 0) {
            return array('success' => false, 'error' => 'worker ' . $rep['worker'] . ' has no provider configured');
        }
        return array('success' => true, 'error' => '');
    } catch (Throwable $e) {
        return array('success' => false, 'error' => 'hookworker: ' . $e->getMessage());
    }
}

/** Where the browser goes for a Comet login: the relay page of this module. */
function hookworker_sso_page(): string
{
    $base = '';
    $setting = '\\WHMCS\\Config\\Setting';
    if (class_exists($setting)) {
        try {
            $base = rtrim((string) $setting::getValue('SystemURL'), '/') . '/';
        } catch (Throwable $e) {
            $base = '';
        }
    }
    return $base . 'modules/servers/hookworker/sso.html';
}

/**
 * Single sign-on. Comet: the worker starts a session as the service's user
 * (Comet admin API AdminAccountSessionStartAsUser,
 * /api/v1/admin/account/session-start-as-user, comet-go-sdk v25.9.6) and
 * the browser is sent to sso.html, which opens the Comet Server and logs in
 * with the session key by postMessage, as the official Comet WHMCS module
 * does (CometBackup/comet-whmcs-module functions.php performServerLogin,
 * commit 7171d7f). The login travels in the URL fragment, which browsers
 * never send to a server, so it is in no access log. CodeGuard and
 * StoreGrid: no public single sign-on call exists; say so.
 */
function hookworker_ServiceSingleSignOn(array $params)
{
    try {
        $module = hookworker_module_settings($params);
        if ($module['provider'] === 'codeguard') {
            return array('success' => false, 'errorMsg' => 'CodeGuard has no public single sign-on API (the LogicBoxes API offers none); log in at the CodeGuard dashboard with the account\'s own credentials.');
        }
        if ($module['provider'] !== 'comet') {
            return array('success' => false, 'errorMsg' => 'Single sign-on is available for Comet products only; ' . $module['provider'] . ' offers no single sign-on call.');
        }
        $rep = hookworker_ask('hookworker.rpc.sso.comet', array(
            'service_id' => (int) $params['serviceid'],
            'username' => isset($params['username']) ? (string) $params['username'] : '',
        ), hookworker_timeout($params));
        if (empty($rep['url']) || empty($rep['session_key']) || empty($rep['username'])) {
            return array('success' => false, 'errorMsg' => 'hookworker: the worker\'s reply has no Comet session');
        }
        $web = isset($params['configoption11']) && is_scalar($params['configoption11']) ? trim((string) $params['configoption11']) : '';
        if ($web !== '') {
            if (!preg_match('#^https?://[^/\s]+#i', $web)) {
                return array('success' => false, 'errorMsg' => 'Module Settings: Comet web address must be an http(s) URL, got "' . $web . '"');
            }
            $rep['url'] = rtrim($web, '/') . '/';
        }
        $login = rtrim(strtr(base64_encode((string) json_encode(array(
            'server' => $rep['url'], 'username' => $rep['username'], 'sessionkey' => $rep['session_key'],
        ), JSON_UNESCAPED_SLASHES)), '+/', '-_'), '=');
        hookworker_log_call('ServiceSingleSignOn', array('service' => $params['serviceid']), 'Comet session started for ' . $rep['username']);
        return array('success' => true, 'redirectTo' => hookworker_sso_page() . '#' . $login);
    } catch (Throwable $e) {
        return array('success' => false, 'errorMsg' => 'hookworker: ' . $e->getMessage());
    }
}

/**
 * The service's state as the worker knows it: 'pending' (an action is still
 * queued or running at the worker, or no final result yet: provisioning
 * pending), 'ok', 'failed' (dead-lettered or failed for good) or 'unknown'
 * (the worker could not be asked), plus the reply.
 */
function hookworker_service_state(array $params, float $timeout): array
{
    try {
        $rep = hookworker_ask('hookworker.rpc.service.result', array('service_id' => (int) $params['serviceid']), $timeout);
    } catch (Throwable $e) {
        return array('state' => 'unknown', 'error' => $e->getMessage(), 'reply' => array());
    }
    $last = isset($rep['last']) && is_array($rep['last']) ? $rep['last'] : null;
    $state = 'pending';
    if (!empty($rep['queued'])) {
        $state = 'pending'; // an action of the service is still queued or running at the worker
    } elseif (!empty($rep['dead_letters'])) {
        $state = 'failed';
    } elseif ($last !== null) {
        if ($last['type'] === 'provisioning.succeeded') {
            $state = 'ok';
        } elseif ($last['type'] === 'provisioning.dead_lettered' || empty($last['will_retry'])) {
            $state = 'failed';
        }
    }
    return array('state' => $state, 'error' => '', 'reply' => $rep);
}

function hookworker_h($s): string
{
    return htmlspecialchars((string) $s, ENT_QUOTES, 'UTF-8');
}

/**
 * Admin services tab: the last result event for the service (status,
 * provider reference, last error, attempts) and its dead letters, from the
 * worker. Use the "Retry now" button to replay the dead letters.
 */
function hookworker_AdminServicesTabFields(array $params)
{
    $st = hookworker_service_state($params, hookworker_timeout($params));
    if ($st['state'] === 'unknown') {
        return array('hookworker' => '<span class="label label-default">status unavailable</span> ' . hookworker_h($st['error']));
    }
    $rep = $st['reply'];
    $last = isset($rep['last']) && is_array($rep['last']) ? $rep['last'] : null;
    $labels = array('pending' => 'label-warning">provisioning pending', 'ok' => 'label-success">provisioned', 'failed' => 'label-danger">failed');
    $status = '<span class="label ' . $labels[$st['state']] . '</span>';
    if (!empty($rep['partial'])) {
        $status .= ' (the worker is still reading its results)';
    }
    $f = array('hookworker status' => $status);
    $queued = isset($rep['queued']) && is_array($rep['queued']) ? $rep['queued'] : array();
    if (count($queued) > 0) {
        $q = array();
        foreach ($queued as $e) {
            $q[] = hookworker_h($e['type'] . ' ' . $e['event_id']);
        }
        $f['Queued at the worker'] = implode('<br>', $q);
    }
    if ($last !== null) {
        $f['Last result'] = hookworker_h($last['type'] . ' — ' . (isset($last['action']) ? $last['action'] : '') . ' at ' .
            (isset($last['provider']) ? $last['provider'] : '') . ', ' . $last['at'] . ' (event ' . $last['source_event_id'] . ')');
        $f['Provider reference'] = hookworker_h(isset($last['reference']) ? $last['reference'] : '');
        $f['Last error'] = hookworker_h(isset($last['error']) ? $last['error'] : '');
        $f['Attempts'] = hookworker_h(isset($last['attempt']) ? $last['attempt'] : 0);
    } else {
        $f['Last result'] = 'none yet';
    }
    $dl = isset($rep['dead_letters']) && is_array($rep['dead_letters']) ? $rep['dead_letters'] : array();
    if (count($dl) > 0) {
        $lines = array();
        foreach ($dl as $d) {
            $lines[] = hookworker_h('#' . $d['seq'] . ' ' . $d['event_type'] . ' (' . $d['attempts'] . ' attempts): ' . $d['reason']);
        }
        $f['Dead letters'] = implode('<br>', $lines) . '<br><em>"Retry now" replays them with the same idempotency keys.</em>';
    }
    return $f;
}

function hookworker_AdminCustomButtonArray()
{
    return array('Retry now' => 'RetryNow');
}

/** "Retry now": replays the service's dead letters at the worker. */
function hookworker_RetryNow(array $params)
{
    try {
        $rep = hookworker_ask('hookworker.rpc.service.retry', array('service_id' => (int) $params['serviceid']), hookworker_timeout($params));
        $n = isset($rep['replayed']) && is_array($rep['replayed']) ? count($rep['replayed']) : 0;
        if ($n === 0) {
            return 'hookworker: this service has no dead letter; nothing to retry';
        }
        hookworker_log_call('RetryNow', array('service' => $params['serviceid']), $n . ' dead letter(s) replayed');
        return 'success';
    } catch (Throwable $e) {
        return 'hookworker: ' . $e->getMessage();
    }
}

/**
 * Client area: "provisioning pending" until the worker has a final result,
 * then the account name; never an internal error text. The page waits at
 * most 1.5 s for the worker.
 */
function hookworker_ClientArea(array $params)
{
    // a client's page waits at most 1.5 s for the worker, whatever the setting
    $st = hookworker_service_state($params, min(1.5, hookworker_timeout($params)));
    $last = isset($st['reply']['last']) && is_array($st['reply']['last']) ? $st['reply']['last'] : array();
    $texts = array(
        'pending' => 'Provisioning pending: your backup account is being set up.',
        'ok' => 'Your backup account is ready.',
        'failed' => 'Provisioning needs our attention; our team has been notified.',
        'unknown' => 'Status temporarily unavailable.',
    );
    $provider = '';
    try {
        $provider = hookworker_module_settings($params)['provider'];
    } catch (Throwable $e) {
        $provider = '';
    }
    return array(
        'templatefile' => 'clientarea',
        'vars' => array(
            'hookworker_state' => $st['state'],
            'hookworker_message' => $texts[$st['state']],
            'hookworker_account' => $st['state'] === 'ok' && isset($last['reference']) ? (string) $last['reference'] : '',
            'hookworker_sso' => $provider === 'comet' && $st['state'] === 'ok',
        ),
    );
}
