#!/usr/bin/perl
# Writes a small MaxMind DB for the geoip specs, with Debian's
# libmaxmind-db-writer-perl. Called by geoip_db.py:
#
#   perl write_mmdb.pl SPEC.json OUT.mmdb
#
# SPEC: {"database_type": "GeoIP2-Country", "ip_version": 6,
#        "networks": [{"network": "198.51.100.0/24", "country": "DE",
#                      "continent": "EU", "asn": 64500,
#                      "asn_org": "Example Net"}, ...]}
# Each network gets the GeoIP2 layout (country.iso_code, continent.code)
# and the GeoLite2-ASN one (autonomous_system_number,
# autonomous_system_organization) for the fields it names; IPv4 networks of
# an IPv6 database land in its IPv4 subtree, as in MaxMind's own files.
use strict;
use warnings;

use JSON::PP ();
use MaxMind::DB::Writer::Tree;

die "usage: $0 SPEC.json OUT.mmdb\n" unless @ARGV == 2;
my ($spec_path, $out_path) = @ARGV;

open my $in, '<:raw', $spec_path or die "$spec_path: $!\n";
my $spec = JSON::PP->new->decode(do { local $/; <$in> });
close $in;

my %types = (
    country                        => 'map',
    registered_country             => 'map',
    continent                      => 'map',
    iso_code                       => 'utf8_string',
    code                           => 'utf8_string',
    autonomous_system_number       => 'uint32',
    autonomous_system_organization => 'utf8_string',
);

my $ip_version = $spec->{ip_version} // 6;
my $tree = MaxMind::DB::Writer::Tree->new(
    ip_version            => $ip_version,
    record_size           => 24,
    database_type         => $spec->{database_type} // 'GeoIP2-Country',
    languages             => ['en'],
    description           => { en => 'sluice spec database' },
    map_key_type_callback => sub { $types{ $_[0] } // die "no type for key $_[0]\n" },
    # The specs use documentation ranges (TEST-NET, 2001:db8::/32), which
    # the writer would otherwise drop as reserved.
    remove_reserved_networks => 0,
    alias_ipv6_to_ipv4       => $ip_version == 6 ? 1 : 0,
);

for my $n (@{ $spec->{networks} }) {
    my %record;
    $record{country} = { iso_code => $n->{country} } if defined $n->{country};
    $record{registered_country} = { iso_code => $n->{registered_country} }
        if defined $n->{registered_country};
    $record{continent} = { code => $n->{continent} } if defined $n->{continent};
    $record{autonomous_system_number} = $n->{asn} if defined $n->{asn};
    $record{autonomous_system_organization} = $n->{asn_org} if defined $n->{asn_org};
    $tree->insert_network($n->{network}, \%record);
}

open my $out, '>:raw', $out_path or die "$out_path: $!\n";
$tree->write_tree($out);
close $out or die "$out_path: $!\n";
