#!/usr/bin/perl
# A small HTTP client for tblhealth's hostile-input tests: it sends what a
# well-behaved client never would and reports what the server did.
#
#   send PORT [TIMEOUT]     send stdin as is, print the response; stderr gets
#                           "end: eof SECONDS" or "end: timeout"
#   slow PORT INTERVAL MAX  send a request head one byte every INTERVAL seconds
#                           (0: send nothing); print "closed after S" once the
#                           server closes, or "open after MAX"
#   flood PORT N HOLD [FROM [SEND]]
#                           open N connections at once (from the loopback
#                           address FROM), send SEND on each, print "opened=K",
#                           hold them HOLD seconds (or until SIGUSR1) without
#                           reading, print "closed_by_server=C answered=A"
#   fuzz PORT N SEED        send N random or malformed requests, one per
#                           connection; print a summary; exit 1 if the server
#                           ever failed to accept, answered too slowly or
#                           answered 200 to a path other than /health or /metrics
use strict;
use warnings;
use IO::Select;
use IO::Socket::INET;
use Socket qw(SHUT_WR SOL_SOCKET SO_RCVBUF inet_aton pack_sockaddr_in);
use Time::HiRes qw(time sleep);

$SIG{PIPE} = 'IGNORE';
$| = 1;

# Connect to the server on 127.0.0.1, from the loopback address $from when
# given (127.0.0.2, ...: each is another client address to the server).
sub connect_to {
	my ($port, $blocking, $from) = @_;
	return IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
	    Proto => 'tcp', Timeout => 5, Blocking => $blocking // 1,
	    defined $from ? (LocalAddr => $from) : ());
}

# Write all of $data, giving up when the server stops reading.
sub send_all {
	my ($s, $data) = @_;
	my $off = 0;
	my $sel = IO::Select->new($s);
	while ($off < length $data) {
		last unless $sel->can_write(5);
		my $n = syswrite($s, $data, 65536, $off);
		last unless defined $n && $n > 0;
		$off += $n;
	}
	return $off;
}

# Read until the server closes or $timeout seconds pass; (data, "eof"|"timeout").
sub read_all {
	my ($s, $timeout) = @_;
	my ($resp, $buf, $end) = ('', '', time + $timeout);
	my $sel = IO::Select->new($s);
	for (;;) {
		my $left = $end - time;
		return ($resp, 'timeout') if $left <= 0 || !$sel->can_read($left);
		my $n = sysread($s, $buf, 65536);
		return ($resp, 'eof') if !defined $n || $n == 0;
		$resp .= $buf;
	}
}

sub cmd_send {
	my ($port, $timeout) = @_;
	local $/;
	my $req = <STDIN> // '';
	my $s = connect_to($port) or die "connect: $!\n";
	my $t0 = time;
	send_all($s, $req);
	my ($resp, $how) = read_all($s, $timeout // 5);
	print $resp;
	printf STDERR "end: %s %.3f\n", $how, time - $t0;
}

sub cmd_slow {
	my ($port, $interval, $max) = @_;
	my $s = connect_to($port) or die "connect: $!\n";
	my $head = "GET /health HTTP/1.1\r\nHost: localhost\r\nX-Slow: " . ('a' x 100000);
	my ($t0, $i, $buf) = (time, 0, '');
	my $sel = IO::Select->new($s);
	while (time - $t0 < $max) {
		if ($interval > 0) {
			my $n = syswrite($s, substr($head, $i++, 1));
			if (!defined $n || $n <= 0) {
				printf "closed after %.1f\n", time - $t0;
				return;
			}
		}
		my $wait = $interval > 0 ? $interval : 0.1;
		if ($sel->can_read($wait)) {
			my $n = sysread($s, $buf, 4096);
			if (!defined $n || $n == 0) {
				printf "closed after %.1f\n", time - $t0;
				return;
			}
		}
	}
	printf "open after %.1f\n", time - $t0;
}

# A non-blocking connection whose receive buffer is as small as the kernel
# allows, so that a response the flood never reads stays with the server.
sub connect_small {
	my ($port, $from) = @_;
	my $s = IO::Socket::INET->new(Proto => 'tcp', Blocking => 0,
	    defined $from ? (LocalAddr => $from) : ()) or return;
	setsockopt($s, SOL_SOCKET, SO_RCVBUF, 1) or die "SO_RCVBUF: $!\n";
	connect($s, pack_sockaddr_in($port, inet_aton('127.0.0.1'))) or $!{EINPROGRESS}
	    or return;
	return $s;
}

sub cmd_flood {
	my ($port, $n, $hold, $from, $send) = @_;
	my $stop = 0;
	local $SIG{USR1} = sub { $stop = 1 };
	my @socks;
	for (1 .. $n) {
		my $s = connect_small($port, $from);
		push @socks, $s if $s;
	}
	# Wait for the non-blocking connects to finish.
	my $sel = IO::Select->new(@socks);
	my $end = time + 5;
	my %done;
	while (keys %done < @socks && time < $end) {
		$done{fileno $_} = 1 for $sel->can_write(0.5);
	}
	@socks = grep { defined $_->peername } @socks;
	if (defined $send && length $send) {
		syswrite($_, $send) for @socks;
	}
	printf "opened=%d\n", scalar @socks;
	$end = time + $hold;
	sleep 0.05 while !$stop && time < $end;
	# What the server did meanwhile: read what it sent, up to its end.
	my ($closed, $answered, $buf) = (0, 0, '');
	for my $s (@socks) {
		my ($got, $wait) = ('', 0);
		while (IO::Select->new($s)->can_read($wait)) {
			my $r = sysread($s, $buf, 65536);
			if (!defined $r || $r == 0) {
				$closed++;
				last;
			}
			$got .= $buf;
			$wait = 1;
		}
		$answered++ if $got =~ m{^HTTP/1\.1 \d{3} };
	}
	print "closed_by_server=$closed answered=$answered\n";
}

# ---- fuzz --------------------------------------------------------------------

sub rbytes { my $n = shift; join '', map { chr int rand 256 } 1 .. $n }
sub pick { $_[int rand @_] }

sub rpath {
	return pick('/health', '/metrics', '/', '/../../etc/passwd', '/health/../../etc/passwd',
	    '/%2e%2e/%2e%2e/etc/passwd', '/health%00', "/health\0/x", "/met\0rics", '//health',
	    '/health?x=1', '/health/', '*', 'http://localhost/health', '/HEALTH',
	    '/' . ('a' x int rand 9000), '/' . rbytes(int rand 40), '/etc/passwd',
	    '/health%2F..%2F..%2Fetc%2Fpasswd', "/\xff\xfe", '/health#x', '');
}

sub rmethod {
	return pick('GET', 'GET', 'GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'TRACE',
	    'CONNECT', 'PATCH', 'get', "G\0T", 'X' x (1 + int rand 300), rbytes(1 + int rand 8));
}

sub rversion { pick('HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/9.9', 'HTTP/', 'FOO', '') }

sub rheaders {
	my @h = ("Host: localhost");
	for (1 .. int rand 5) {
		push @h, pick('Content-Length: 99999999999999999999', 'Content-Length: -1',
		    'Content-Length: abc', 'Content-Length: 4', 'Content-Length: 1000000000',
		    "Transfer-Encoding: chunked", 'Transfer-Encoding: gzip, chunked',
		    'Expect: 100-continue', 'Connection: keep-alive', 'Connection: close',
		    'no colon here', ': empty name', "X-Nul: a\0b", " folded continuation",
		    'X-Long: ' . ('b' x int rand 20000), 'Host: other', "X-Bin: " . rbytes(20),
		    'Range: bytes=0-1', 'Accept-Encoding: gzip', 'Cookie: ' . ('c=d; ' x 50));
	}
	return @h;
}

sub rrequest {
	my $kind = int rand 8;
	return rbytes(int rand 3000) if $kind == 0;
	my $eol = $kind == 1 ? "\n" : "\r\n";
	my $req = join($eol, rmethod() . ' ' . rpath() . ' ' . rversion(), rheaders()) . $eol . $eol;
	$req .= rbytes(int rand 200) if $kind == 2;
	$req .= "5\r\nhello\r\nZZZ\r\n" if $kind == 3;
	$req = substr($req, 0, int rand length $req) if $kind == 4;
	if ($kind == 5) {
		substr($req, int rand length $req, 1) = chr int rand 256 for 1 .. 1 + int rand 5;
	}
	return $req;
}

sub cmd_fuzz {
	my ($port, $n, $seed) = @_;
	srand $seed;
	my %status;
	my ($answered, $silent, $failed, $slow, $bad) = (0, 0, 0, 0, 0);
	for my $i (1 .. $n) {
		my $req = rrequest();
		my $s;
		for (1 .. 20) {
			last if $s = connect_to($port);
			sleep 0.05;
		}
		if (!$s) {
			$failed++;
			next;
		}
		send_all($s, $req);
		shutdown($s, SHUT_WR);
		my ($resp, $how) = read_all($s, 10);
		close $s;
		if ($how eq 'timeout') {
			$slow++;
			print STDERR "no end in time for: ", substr($req, 0, 300) =~ s/[^ -~]/./gr, "\n";
		}
		if ($resp =~ m{^HTTP/1\.[01] (\d{3}) }) {
			$answered++;
			$status{$1}++;
			my ($path) = $req =~ m{^[^ ]* ([^ ]*) };
			if ($1 eq '200' && !(defined $path && $path =~ m{^/(health|metrics)(\?.*)?$})) {
				$bad++;
				print STDERR "200 for: ", substr($req, 0, 100) =~ s/[^ -~]/./gr, "\n";
			}
			$bad++ if $resp =~ /root:/;
		} else {
			$silent++;
		}
	}
	my $st = join ',', map { "$_:$status{$_}" } sort keys %status;
	print "seed=$seed requests=$n answered=$answered closed_without_answer=$silent ",
	    "connect_failures=$failed timeouts=$slow bad=$bad statuses=$st\n";
	exit($failed || $slow || $bad ? 1 : 0);
}

my $cmd = shift @ARGV // '';
if ($cmd eq 'send') { cmd_send(@ARGV) }
elsif ($cmd eq 'slow') { cmd_slow(@ARGV) }
elsif ($cmd eq 'flood') { cmd_flood(@ARGV) }
elsif ($cmd eq 'fuzz') { cmd_fuzz(@ARGV) }
else { die "usage: $0 send|slow|flood|fuzz PORT ...\n" }
