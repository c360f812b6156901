<?php
// A minimal WHMCS stand-in for the hookworker tests: add_hook / run_hook
// (synchronous, sorted by priority, no error isolation, as in WHMCS),
// localAPI with canned clients, services, orders and invoices, logActivity,
// and a Capsule stub over tblinvoiceitems. The canned data deliberately
// carries secrets (service/client passwords, server password, access hash)
// so that the tests can prove none of them is ever published.

define('WHMCS', true);

require_once __DIR__ . '/capsule_stub.php';

$GLOBALS['stub_hooks'] = array();
$GLOBALS['stub_activity'] = array();
$GLOBALS['stub_api_calls'] = array();

function add_hook($hookPoint, $priority, $fn, $rollback = '')
{
    $GLOBALS['stub_hooks'][$hookPoint][] = array('priority' => $priority, 'fn' => $fn);
}

function run_hook($hookPoint, $vars)
{
    $hooks = isset($GLOBALS['stub_hooks'][$hookPoint]) ? $GLOBALS['stub_hooks'][$hookPoint] : array();
    uasort($hooks, function ($a, $b) {
        return $a['priority'] < $b['priority'] ? -1 : 1;
    });
    $results = array();
    foreach ($hooks as $h) {
        $r = call_user_func($h['fn'], $vars);
        if ($r) {
            $results[] = $r;
        }
    }
    return $results;
}

function logModuleCall($module, $action, $request, $response, $processed = '', $replace = array())
{
    $GLOBALS['stub_module_log'][] = array('module' => $module, 'action' => $action, 'request' => $request, 'response' => $response);
}

function logActivity($description, $userId = 0)
{
    $GLOBALS['stub_activity'][] = $description;
    $f = getenv('HW_ACTIVITY_LOG');
    if (is_string($f) && $f !== '') {
        file_put_contents($f, getmypid() . ' ' . str_replace("\n", ' ', $description) . "\n", FILE_APPEND | LOCK_EX);
    }
}

function stub_fixtures()
{
    static $f = null;
    if ($f !== null) {
        return $f;
    }
    $clients = array(
        7 => array(
            'id' => 7, 'userid' => 7, 'firstname' => 'Ada', 'lastname' => 'Lovelace', 'companyname' => 'Analytical Engines Ltd',
            'email' => 'ada@example.com', 'address1' => '12 St James Square', 'address2' => '', 'city' => 'London',
            'state' => 'Greater London', 'postcode' => 'SW1Y 4JH', 'country' => 'GB', 'countrycode' => 'GB',
            'countryname' => 'United Kingdom', 'language' => 'english',
            // GetClientsDetails' phone fields (lib/Client.php formatPhoneNumber, WHMCS 8.7)
            'phonenumber' => '2071234567', 'phonecc' => '44', 'phonenumberformatted' => '+44.2071234567', 'telephoneNumber' => '+44.2071234567',
            'password' => 'S3cr3t-client-pass', 'status' => 'Active',
        ),
    );
    // Service 101's configurable options as GetClientsProducts returns them
    // in WHMCS 7.8 and 8.7 (includes/api/getclientsproducts.php, through
    // getCartConfigOptions): "option" is the label half of a "key|Label"
    // name, and a dropdown's "value" is the label of the chosen sub-option.
    // The key halves (what module params use) live only in the tables
    // below, as the admin named them (seed 002: number_of_devices|Devices).
    $opts101 = array('configoption' => array(
        array('id' => 11, 'option' => 'Devices', 'type' => 'quantity', 'value' => '5'),
        array('id' => 12, 'option' => 'Initial Storage Vault Quota (GB)', 'type' => 'quantity', 'value' => '100'),
        array('id' => 13, 'option' => 'Protected Items Quota (GB)', 'type' => 'quantity', 'value' => '50'),
        array('id' => 14, 'option' => 'Region', 'type' => 'dropdown', 'value' => 'Europe (West)'),
        array('id' => 15, 'option' => 'Storage GB', 'type' => 'quantity', 'value' => '100'),
    ));
    // GetClientsProducts customfields: {id, name, translated_name, value}.
    $cf101 = array('customfield' => array(
        array('id' => 21, 'name' => 'Comet account name', 'translated_name' => 'Comet account name', 'value' => 'ada-backup'),
        array('id' => 22, 'name' => 'Password', 'translated_name' => 'Password', 'value' => 'S3cr3t-customfield-pass'),
    ));
    \WHMCS\Database\Capsule::$tables['tblproductconfiglinks'] = array(
        array('id' => 1, 'gid' => 1, 'pid' => 5),
    );
    \WHMCS\Database\Capsule::$tables['tblproductconfigoptions'] = array(
        array('id' => 11, 'gid' => 1, 'optionname' => 'number_of_devices|Devices', 'optiontype' => 4),
        array('id' => 12, 'gid' => 1, 'optionname' => 'storage_vault_quota_gb|Initial Storage Vault Quota (GB)', 'optiontype' => 4),
        array('id' => 13, 'gid' => 1, 'optionname' => 'protected_item_quota_gb | Protected Items Quota (GB)', 'optiontype' => 4),
        array('id' => 14, 'gid' => 1, 'optionname' => 'region|Region', 'optiontype' => 1),
        array('id' => 15, 'gid' => 1, 'optionname' => 'Storage GB', 'optiontype' => 4),
        array('id' => 16, 'gid' => 2, 'optionname' => 'stale_option|From a group no longer linked', 'optiontype' => 4),
    );
    \WHMCS\Database\Capsule::$tables['tblproductconfigoptionssub'] = array(
        array('id' => 111, 'configid' => 11, 'optionname' => 'Devices'),
        array('id' => 121, 'configid' => 12, 'optionname' => 'GB'),
        array('id' => 131, 'configid' => 13, 'optionname' => 'GB'),
        array('id' => 141, 'configid' => 14, 'optionname' => 'eu-west|Europe (West)'),
        array('id' => 142, 'configid' => 14, 'optionname' => 'us-east|US (East)'),
        array('id' => 151, 'configid' => 15, 'optionname' => 'GB'),
        array('id' => 161, 'configid' => 16, 'optionname' => 'x'),
    );
    \WHMCS\Database\Capsule::$tables['tblhostingconfigoptions'] = array(
        array('id' => 1, 'relid' => 101, 'configid' => 11, 'optionid' => 111, 'qty' => 5),
        array('id' => 2, 'relid' => 101, 'configid' => 12, 'optionid' => 121, 'qty' => 100),
        array('id' => 3, 'relid' => 101, 'configid' => 13, 'optionid' => 131, 'qty' => 50),
        array('id' => 4, 'relid' => 101, 'configid' => 14, 'optionid' => 141, 'qty' => 0),
        array('id' => 5, 'relid' => 101, 'configid' => 15, 'optionid' => 151, 'qty' => 100),
        array('id' => 6, 'relid' => 101, 'configid' => 16, 'optionid' => 161, 'qty' => 9),
    );
    \WHMCS\Database\Capsule::$tables['tblcustomfields'] = array(
        array('id' => 21, 'type' => 'product', 'relid' => 5, 'fieldname' => 'Username|Comet account name'),
        array('id' => 22, 'type' => 'product', 'relid' => 5, 'fieldname' => 'Password'),
    );
    \WHMCS\Database\Capsule::$tables['tblcustomfieldsvalues'] = array(
        array('id' => 1, 'fieldid' => 21, 'relid' => 101, 'value' => 'ada-backup'),
        array('id' => 2, 'fieldid' => 22, 'relid' => 101, 'value' => 'S3cr3t-customfield-pass'),
    );
    $svc = function ($id, $orderid, $pid, $cycle, $regdate, $domain, $username, $opts = array(), $cf = array('customfield' => array())) {
        return array(
            'id' => $id, 'clientid' => 7, 'orderid' => $orderid, 'pid' => $pid, 'regdate' => $regdate,
            'name' => 'Backup ' . $pid, 'groupname' => 'Backup', 'domain' => $domain, 'dedicatedip' => '',
            'serverid' => 3, 'servername' => 'backup-1', 'serverip' => '192.0.2.10', 'serverhostname' => 'backup-1.example.net',
            'billingcycle' => $cycle, 'nextduedate' => '2027-01-01', 'status' => 'Active',
            'username' => $username, 'password' => 'S3cr3t-svc-pass',
            'serverpassword' => 'S3cr3t-server-pass', 'serveraccesshash' => 'S3cr3t-accesshash',
            'configoptions' => $opts, 'customfields' => $cf,
        );
    };
    $services = array(
        101 => $svc(101, 50, 5, 'Monthly', '2026-01-10', 'backup1.example.com', 'ada101', $opts101, $cf101),
        102 => $svc(102, 50, 6, 'Annually', '2026-01-10', '', '', array()),
        103 => $svc(103, 40, 5, 'Quarterly', '2025-03-01', 'old.example.com', 'ada103'),
        104 => $svc(104, 41, 5, 'Semi-Annually', '2026-06-01', 'b104.example.com', 'ada104'),
        105 => $svc(105, 42, 5, 'Monthly', '2026-02-01', 'b105.example.com', 'ada105'),
        106 => $svc(106, 43, 6, 'Annually', '2025-12-01', 'b106.example.com', 'ada106'),
        107 => $svc(107, 40, 6, 'One Time', '2025-03-01', 'b107.example.com', 'ada107'),
        // product 8 uses the hookworker server module (tblproducts below)
        110 => $svc(110, 60, 8, 'Monthly', '2026-03-01', 'm110.example.com', 'ada110'),
    );
    $orders = array(
        50 => array('id' => 50, 'ordernum' => '5550', 'userid' => 7, 'invoiceid' => 500, 'status' => 'Pending',
            'lineitems' => array('lineitem' => array(
                array('type' => 'product', 'relid' => 101, 'producttype' => 'Other', 'product' => 'Backup 5', 'domain' => 'backup1.example.com', 'billingcycle' => 'Monthly'),
                array('type' => 'product', 'relid' => 102, 'producttype' => 'Other', 'product' => 'Backup 6', 'domain' => '', 'billingcycle' => 'Annually'),
                array('type' => 'domain', 'relid' => 5001, 'producttype' => 'Domain', 'product' => 'Register', 'domain' => 'backup1.example.com'),
            ))),
        40 => array('id' => 40, 'userid' => 7, 'invoiceid' => 400, 'lineitems' => array('lineitem' => array())),
        41 => array('id' => 41, 'userid' => 7, 'invoiceid' => 0, 'lineitems' => array('lineitem' => array())),
        42 => array('id' => 42, 'userid' => 7, 'invoiceid' => 0, 'lineitems' => array('lineitem' => array())),
        43 => array('id' => 43, 'userid' => 7, 'invoiceid' => 0, 'lineitems' => array('lineitem' => array())),
        60 => array('id' => 60, 'userid' => 7, 'invoiceid' => 600, 'lineitems' => array('lineitem' => array(
            array('type' => 'product', 'relid' => 110, 'producttype' => 'Other', 'product' => 'Backup 8', 'domain' => 'm110.example.com', 'billingcycle' => 'Monthly'),
            array('type' => 'product', 'relid' => 102, 'producttype' => 'Other', 'product' => 'Backup 6', 'domain' => '', 'billingcycle' => 'Annually'),
        ))),
    );
    $item = function ($id, $type, $relid, $desc, $amount) {
        return array('id' => $id, 'type' => $type, 'relid' => $relid, 'description' => $desc, 'amount' => $amount, 'taxed' => 0);
    };
    $invoices = array(
        500 => array('invoiceid' => 500, 'userid' => 7, 'duedate' => '2026-01-10', 'status' => 'Paid', 'items' => array('item' => array(
            $item(5001, 'Hosting', 101, 'Backup 5 - backup1.example.com (10/01/2026 - 09/02/2026)', '10.00'),
            $item(5002, 'Hosting', 102, 'Backup 6 (10/01/2026 - 09/01/2027)', '99.00'),
            $item(5003, 'DomainRegister', 5001, 'Domain Registration - backup1.example.com', '12.00'),
        ))),
        900 => array('invoiceid' => 900, 'userid' => 7, 'duedate' => '2026-03-01', 'status' => 'Paid', 'items' => array('item' => array(
            $item(9001, 'Hosting', 103, 'Backup 5 - old.example.com (01/03/2026 - 31/05/2026)', '30.00'),
            $item(9002, 'Addon', 301, 'Extra storage (01/04/2026 - 31/03/2027)', '20.00'),
            $item(9003, 'Domain', 5002, 'Domain Renewal - old.example.com', '12.00'),
            $item(9004, 'Hosting', 107, 'Backup 6 one time', '5.00'),
        ))),
        901 => array('invoiceid' => 901, 'userid' => 7, 'duedate' => '2026-06-01', 'status' => 'Paid', 'items' => array('item' => array(
            $item(9011, 'Hosting', 104, 'Backup 5 - b104.example.com', '60.00'),
        ))),
        902 => array('invoiceid' => 902, 'userid' => 7, 'duedate' => '2026-02-01', 'status' => 'Paid', 'items' => array('item' => array(
            $item(9021, 'Hosting', 105, 'Backup 5 - b105.example.com', '10.00'),
        ))),
        610 => array('invoiceid' => 610, 'userid' => 7, 'duedate' => '2026-04-01', 'status' => 'Paid', 'items' => array('item' => array(
            $item(6101, 'Hosting', 110, 'Backup 8 - m110.example.com (01/04/2026 - 30/04/2026)', '10.00'),
        ))),
        903 => array('invoiceid' => 903, 'userid' => 7, 'duedate' => '2026-12-01', 'status' => 'Paid', 'items' => array('item' => array(
            $item(9031, 'Hosting', 106, 'Backup 6 - b106.example.com', '99.00'),
        ))),
    );
    $addons = array(
        301 => array('id' => 301, 'userid' => 7, 'orderid' => 40, 'serviceid' => 101, 'addonid' => 9, 'name' => 'Extra storage',
            'billingcycle' => 'Annually', 'regdate' => '2025-04-01', 'nextduedate' => '2027-04-01', 'status' => 'Active'),
    );
    // Older invoice items, for the "older item with the same type+relid" rule.
    \WHMCS\Database\Capsule::$tables['tblinvoiceitems'] = array(
        array('id' => 4001, 'invoiceid' => 400, 'type' => 'Hosting', 'relid' => 103),
        array('id' => 7001, 'invoiceid' => 700, 'type' => 'Hosting', 'relid' => 104),
        array('id' => 4002, 'invoiceid' => 400, 'type' => 'Addon', 'relid' => 301),
        array('id' => 6001, 'invoiceid' => 600, 'type' => 'Hosting', 'relid' => 110),
        array('id' => 6101, 'invoiceid' => 610, 'type' => 'Hosting', 'relid' => 110),
        array('id' => 6201, 'invoiceid' => 620, 'type' => 'Hosting', 'relid' => 110),
    );
    // The module of each product (tblproducts.servertype) and invoice states, for the hookworker module.
    \WHMCS\Database\Capsule::$tables['tblproducts'] = array(
        array('id' => 5, 'servertype' => ''),
        array('id' => 6, 'servertype' => 'cometbackup'),
        array('id' => 8, 'servertype' => 'hookworker'),
    );
    \WHMCS\Database\Capsule::$tables['tblinvoices'] = array(
        array('id' => 600, 'status' => 'Paid'),
        array('id' => 610, 'status' => 'Paid'),
        array('id' => 620, 'status' => 'Unpaid'),
    );
    $f = array('clients' => $clients, 'services' => $services, 'orders' => $orders, 'invoices' => $invoices, 'addons' => $addons);
    return $f;
}

function localAPI($command, $values = array(), $adminUser = '')
{
    $GLOBALS['stub_api_calls'][] = $command;
    $f = stub_fixtures();
    $ok = function (array $r) {
        return array_merge(array('result' => 'success'), $r);
    };
    $err = function ($m) {
        return array('result' => 'error', 'message' => $m);
    };
    switch ($command) {
        case 'GetClientsDetails':
            $id = isset($values['clientid']) ? (int) $values['clientid'] : 0;
            if (!isset($f['clients'][$id])) {
                return $err('Client Not Found');
            }
            $c = $f['clients'][$id];
            return $ok(array_merge($c, array('client' => $c)));
        case 'GetClientsProducts':
            $list = array();
            foreach ($f['services'] as $id => $s) {
                if (!empty($values['serviceid']) && (int) $values['serviceid'] !== $id) {
                    continue;
                }
                if (!empty($values['clientid']) && (int) $values['clientid'] !== $s['clientid']) {
                    continue;
                }
                $list[] = $s;
            }
            return $ok(array('totalresults' => count($list), 'numreturned' => count($list), 'products' => array('product' => $list)));
        case 'GetOrders':
            $id = isset($values['id']) ? (int) $values['id'] : 0;
            $list = isset($f['orders'][$id]) ? array($f['orders'][$id]) : array();
            return $ok(array('totalresults' => count($list), 'orders' => array('order' => $list)));
        case 'GetInvoice':
            $id = isset($values['invoiceid']) ? (int) $values['invoiceid'] : 0;
            if (!isset($f['invoices'][$id])) {
                return $err('Invoice ID Not Found');
            }
            return $ok($f['invoices'][$id]);
        case 'GetClientsAddons':
            $list = array();
            foreach ($f['addons'] as $a) {
                if (!empty($values['clientid']) && (int) $values['clientid'] !== $a['userid']) {
                    continue;
                }
                $list[] = $a;
            }
            return $ok(array('totalresults' => count($list), 'addons' => array('addon' => $list)));
    }
    return $err('Command Not Found');
}

require_once __DIR__ . '/../hookworker.php';
